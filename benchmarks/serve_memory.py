"""Memory of the serving benchmark: per-worker RSS/PSS/private pages, and what the model costs an app."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.measure import last_json_line, rollup
from benchmarks.serve_control import Server

REPO = Path(__file__).resolve().parents[1]


def memory_report(server: Server, version_dir: Path, array_bytes: int) -> dict[str, Any]:
    """Per worker: RSS, PSS, private anonymous memory, and resident pages of the mapped model files."""
    import psutil

    workers = []
    for pid in server.worker_pids():
        info = psutil.Process(pid).memory_full_info()
        mapped, current = 0, False
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                current = len(fields) >= 6 and fields[5].startswith(str(version_dir))
            elif current and fields[0] == "Rss:":
                mapped += int(fields[1]) * 1024
        totals = rollup(pid)
        workers.append({"pid": pid, "rss": info.rss, "pss": info.pss, "uss": info.uss,
                        "private_dirty": totals["Private_Dirty"], "model_files_resident": mapped})
    return {"array_bytes": array_bytes, "workers": workers}


MEMPROBE = """
import gc, json, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, {repo!r})
from benchmarks.measure import anonymous_bytes
import sklearn.feature_extraction.text, sklearn.decomposition, training.features, service.app  # imports only
from service import create_app
source = Path({models!r})
version = (source / "CURRENT").read_text().strip()
store_dir = Path(tempfile.mkdtemp())
app = create_app({{"models_dir": str(store_dir)}})  # the app, with no model yet
client = app.test_client()
client.get("/readyz")
gc.collect()
before = anonymous_bytes()
shutil.copytree(source / version, store_dir / version)
(store_dir / "CURRENT").write_text(version)
assert app.extensions["related"].store.refresh() is not None
gc.collect()
loaded = anonymous_bytes()
for path in {paths!r}:
    assert client.get(path).status_code == 200
gc.collect()
cached = anonymous_bytes()
for draft in {drafts!r}:
    assert client.post("/related", json=draft).status_code == 200
gc.collect()
shutil.rmtree(store_dir)
print(json.dumps({{"anonymous_before": before, "after_load": loaded, "after_gets": cached,
                  "anonymous_after": anonymous_bytes()}}))
"""


def model_private_cost(models_dir: Path, paths: list[str], drafts: list[dict[str, Any]]) -> dict[str, int]:
    """Private memory an app gains by loading the model, then answering the benchmark's GETs and drafts."""
    code = MEMPROBE.format(repo=str(REPO), models=str(models_dir), paths=paths, drafts=drafts)
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return last_json_line(output, "memory probe")
