"""gunicorn settings and hooks used by `related serve` (also usable with `gunicorn -c`)."""

from __future__ import annotations

import os
from typing import Any

# Threads per worker keep HTTP keep-alive connections cheap; the app's hot path is a cache
# lookup. 2 per worker, not 4: the same req/s on 2 cores with a shorter tail (p99 at 32
# connections 15 ms instead of 23-27 ms, docs/benchmarks.md "Serving").
worker_class = "gthread"
workers = 2
threads = 2
bind = ["127.0.0.1:8000"]
# Never --preload: each worker creates the app (and maps the model) itself, so HUP reloads
# code and the memory-mapped arrays are shared through the page cache anyway.
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
# Request limits (gunicorn caps the request line at 8190 bytes; the app caps bodies).
limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 8190
# Recycle workers now and then to bound any leak; the jitter keeps them from restarting together.
max_requests = 1_000_000
max_requests_jitter = 100_000
proc_name = "related-articles"
# gunicorn >= 25.1 opens a control socket in $HOME by default; two servers would share it.
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = "info"


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Replacement for ``gunicorn.util.write_error``: protocol errors in the service's JSON shape."""
    from gunicorn import util

    from service.errors import error_body

    code = reason.lower().replace(" ", "_").replace("-", "_") or "error"
    body = error_body(status_int, code, mesg or reason)
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def post_fork(server: Any, worker: Any) -> None:
    """In each worker: one BLAS thread (the workers already use the cores), JSON protocol errors."""
    from gunicorn import util
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    util.write_error = _write_json_error


def post_worker_init(worker: Any) -> None:
    """After the app (and model) is loaded: move the worker's objects to the permanent GC generation.

    With the master's objects frozen before the fork (see ``service.cli``), full collections
    then never traverse the libraries or the model (no pauses of tens of milliseconds, no
    copy-on-write of the pages shared with the master). No collection runs here for the same
    reason.
    """
    import gc

    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the Prometheus multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from service.metrics import child_exit as mark_dead

        mark_dead(server, worker)
