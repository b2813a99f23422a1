"""Publishing under load for the serving benchmark: staged versions, publishing them, convergence."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.serve_control import http_get


def publish_during_run(models_dir: Path, staged: list[Path], at: list[float], seen: list[tuple[float, str]],
                       published: list[tuple[float, str]], port: int, stop: threading.Event) -> None:
    """Move staged versions into the served store at the given offsets (s); poll /readyz meanwhile."""
    from training.model_dir import set_current

    start = time.monotonic()
    pending = list(zip(at, staged))
    while not stop.is_set():
        now = time.monotonic() - start
        if pending and now >= pending[0][0]:
            _, version_dir = pending.pop(0)
            os.rename(version_dir, models_dir / version_dir.name)
            set_current(models_dir, version_dir.name)
            published.append((round(now, 2), version_dir.name))
        try:
            seen.append((round(now, 2), json.loads(http_get(port, "/readyz", timeout=5)[2])["model_version"]))
        except (OSError, ValueError, KeyError):
            seen.append((round(now, 2), "readyz failed"))
        time.sleep(0.05)


def convergence(published: list[tuple[float, str]], seen: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """For each published version: when /readyz first showed it and last showed an older one."""
    out = []
    for i, (t_pub, version) in enumerate(published):
        t_next = published[i + 1][0] if i + 1 < len(published) else float("inf")
        window = [(t, v) for t, v in seen if t_pub <= t < t_next]
        first = next((t for t, v in window if v == version), None)
        older = [t for t, v in window if v != version]
        out.append({"version": version, "published_s": t_pub, "first_seen_s": first,
                    "all_workers_by_s": max([first or t_pub, *older]) if first is not None else None})
    return out


def stage_versions(corpus: Path, workdir: Path, count: int) -> list[Path]:
    """Train ``count`` genuinely different versions (other SVD seeds) in a staging store."""
    from training.pipeline import train

    staged = []
    for i in range(count):
        result = train(corpus, workdir / f"staging-{i}", n_jobs=2, vectorizer_params={"random_state": 1 + i})
        staged.append(result.path)
    return staged


def stage_copies(models_dir: Path, workdir: Path, count: int) -> list[Path]:
    """Without a corpus: stage copies of the served version under new version ids."""
    source = models_dir / (models_dir / "CURRENT").read_text().strip()
    staged = []
    for i in range(count):
        version = f"{source.name}-copy{i}"
        target = workdir / "staging" / version
        shutil.copytree(source, target)
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["version"] = version
        (target / "manifest.json").write_text(json.dumps(manifest))
        staged.append(target)
    return staged
