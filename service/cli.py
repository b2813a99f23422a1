"""The `related serve` command: run the service under gunicorn (never Flask's development server)."""

from __future__ import annotations

import gc
import importlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click
from gunicorn.app.base import BaseApplication

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Third-party libraries imported once in the gunicorn master so that workers fork with them
# loaded (faster boots and restarts, shared pages). The project's own modules are not
# imported here, so `kill -HUP` still reloads the service and training code.
WARM_IMPORTS = ("numpy", "scipy.sparse", "sklearn.feature_extraction.text", "sklearn.decomposition",
                "sklearn.preprocessing", "joblib", "numba", "flask", "prometheus_client")


class RelatedServer(BaseApplication):
    """A gunicorn application whose workers each build the app with ``service.create_app()``.

    Parameters
    ----------
    options : dict
        gunicorn settings (names as in ``service/gunicorn_conf.py``).
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options to gunicorn's config."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Build the WSGI app (called in each worker, since the app is not preloaded)."""
        from service import create_app

        return create_app()


def gunicorn_options(**overrides: Any) -> dict[str, Any]:
    """Return the settings of ``service/gunicorn_conf.py`` with ``overrides`` applied.

    Parameters
    ----------
    **overrides
        gunicorn setting names to values, e.g. ``workers=4``.

    Returns
    -------
    dict
        Setting name to value, hooks included.
    """
    from gunicorn.config import Config

    from service import gunicorn_conf

    known = Config().settings
    options = {name: value for name, value in vars(gunicorn_conf).items() if name in known}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown gunicorn setting(s) {unknown}")
    options.update(overrides)
    return options


def _fresh_metrics_dir() -> tuple[str, bool]:
    """Return (directory, created): the multiprocess metrics dir, emptied, for this server run."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path), False
    return tempfile.mkdtemp(prefix="related-metrics-"), True


@click.command("serve")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model store to serve (default: $RELATED_MODELS_DIR, else ./models).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="gunicorn worker processes (about 1-2 per core).")
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Threads per worker (gthread); they mostly hold keep-alive connections.")
@click.option("--timeout", type=click.IntRange(1), default=30, show_default=True,
              help="Seconds before a silent worker is killed and restarted.")
def serve(models_dir: Path | None, host: str, port: int, workers: int, threads: int, timeout: int) -> None:
    """Serve related articles over HTTP with gunicorn.

    Each worker memory-maps the model named by MODELS_DIR/CURRENT and switches to a new
    version when CURRENT changes. Settings: RELATED_* variables (docs/settings.md).
    """
    from service.settings import load_settings

    if models_dir is not None:
        os.environ["RELATED_MODELS_DIR"] = str(models_dir.resolve())
    try:
        load_settings()  # fail here, not in every worker, on a bad RELATED_* value
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    metrics_dir, created = _fresh_metrics_dir()
    os.environ[MULTIPROC_ENV] = metrics_dir  # before anything imports prometheus_client
    for module in WARM_IMPORTS:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()  # workers never traverse (and so never copy) the objects they inherit
    options = gunicorn_options(bind=[f"{host}:{port}"], workers=workers, threads=threads, timeout=timeout)
    try:
        RelatedServer(options).run()
    finally:
        if created:
            shutil.rmtree(metrics_dir, ignore_errors=True)
