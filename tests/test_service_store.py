"""Tests of model loading and verification, the CURRENT watch, hot swap under load, and not-ready."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from service.model import ARRAY_FILES, ModelError, load_version
from service.ranking import similar_to_row
from service.store import ModelStore
from tests.conftest import make_tiny_corpus


def current_version(models_dir: Path) -> str:
    return (models_dir / "CURRENT").read_text().strip()


def rewrite(version_dir: Path, name: str, data: bytes, rehash: bool = True) -> None:
    """Replace a file of a version; with ``rehash`` also fix its checksum in the manifest."""
    (version_dir / name).write_bytes(data)
    if rehash:
        manifest_path = version_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
        manifest_path.write_text(json.dumps(manifest))


def npy_bytes(array: np.ndarray, tmp_path: Path) -> bytes:
    path = tmp_path / "tmp.npy"
    np.save(path, array, allow_pickle=array.dtype.hasobject)
    return path.read_bytes()


def is_memory_mapped(array: np.ndarray) -> bool:
    base = array
    while base is not None:
        if isinstance(base, (np.memmap,)) or type(base).__name__ == "mmap":
            return True
        base = getattr(base, "base", None)
    return False


# -- load_version ------------------------------------------------------------------------

def test_load_version_maps_arrays_and_matches_files(models_dir):
    version = current_version(models_dir)
    model = load_version(models_dir, version)
    assert model.version == version and model.n_articles == 32
    for array in (model.article_ids, model.neighbors_indices, model.neighbors_scores, model.vectors_dense,
                  model.published, model.vectors_sparse.data, model.vectors_sparse.indices):
        assert is_memory_mapped(array)
        assert not array.flags.writeable
    assert model.article(0)["id"] == model.article_ids[0]
    assert model.article(31)["id"] == model.article_ids[31]
    assert model.row_of["a/b"] == list(model.article_ids).index("a/b")
    served = (models_dir / version / name for name in ARRAY_FILES)
    assert model.array_bytes == sum(np.load(p, mmap_mode="r").nbytes for p in served)


def _corrupt_checksum(d: Path, tmp: Path) -> None:
    data = bytearray((d / "neighbors_scores.npy").read_bytes())
    data[-1] ^= 0xFF
    rewrite(d, "neighbors_scores.npy", bytes(data), rehash=False)


def _edit_manifest(key: str, value: object):
    def edit(d: Path, tmp: Path) -> None:
        manifest = json.loads((d / "manifest.json").read_text())
        manifest[key] = value
        (d / "manifest.json").write_text(json.dumps(manifest))
    return edit


CORRUPTIONS = {
    "checksum": (_corrupt_checksum, "neighbors_scores.npy: sha256"),
    "missing file": (lambda d, tmp: (d / "articles.jsonl").unlink(), "articles.jsonl: cannot read"),
    "format version": (_edit_manifest("format_version", 99), "unknown format_version 99"),
    "version mismatch": (_edit_manifest("version", "other"), "does not match the directory name"),
    "files not listed": (_edit_manifest("files", {}), "does not list"),
    "path in files": (_edit_manifest("files", {"../CURRENT": "x"}), "does not list"),
    "manifest not json": (lambda d, tmp: (d / "manifest.json").write_text("{"), "cannot read the manifest"),
    "wrong dtype": (lambda d, tmp: rewrite(d, "article_ids.npy", npy_bytes(np.zeros(32), tmp)),
                    "article_ids.npy: expected a 1-d array"),
    "wrong rows": (lambda d, tmp: rewrite(d, "published.npy", npy_bytes(np.zeros(31), tmp)),
                   "published.npy: shape (31,)"),
    "pickled npy": (lambda d, tmp: rewrite(d, "published.npy", npy_bytes(np.array([{}] * 32, dtype=object), tmp)),
                    "published.npy: not a loadable .npy"),
    "bad neighbours": (lambda d, tmp: rewrite(d, "neighbors_indices.npy",
                                              npy_bytes(np.full((32, 20), 99, dtype=np.int32), tmp)),
                       "row numbers outside"),
    "duplicate ids": (lambda d, tmp: rewrite(d, "article_ids.npy", npy_bytes(np.array(["x"] * 32), tmp)),
                      "duplicate article ids"),
    "short articles": (lambda d, tmp: rewrite(d, "articles.jsonl", b'{"id": "x"}\n'), "1 lines, expected 32"),
    "not a vectorizer": (lambda d, tmp: rewrite(d, "vectorizer.joblib", b"not a pickle"), "vectorizer.joblib: cannot load"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_invalid_versions_are_refused_with_a_located_message(models_dir, tmp_path, name):
    corrupt, fragment = CORRUPTIONS[name]
    version = current_version(models_dir)
    corrupt(models_dir / version, tmp_path)
    with pytest.raises(ModelError, match=None) as info:
        load_version(models_dir, version)
    assert fragment in str(info.value)


@pytest.mark.parametrize("version", ["../models", "a/b", "", ".hidden", "x" * 200, "v\n2"])
def test_invalid_version_ids_never_reach_the_filesystem(models_dir, version):
    with pytest.raises(ModelError, match="invalid version id|no such version"):
        load_version(models_dir, version)


# -- ModelStore ---------------------------------------------------------------------------

def test_store_swaps_to_a_new_version_and_old_one_keeps_working(models_dir, tiny_corpus, train_tiny):
    store = ModelStore(models_dir, reload_interval=0, background=False)
    old = store.refresh()
    assert old is not None
    new_version = train_tiny(tiny_corpus[0], models_dir, n_components=3)
    assert store.current().version == new_version
    # a request holding the old model finishes on it, even once its directory is gone
    shutil.rmtree(old.path)
    rows, scores = similar_to_row(old, 0, 3)
    assert len(rows) == 3 and old.article(int(rows[0]))["id"] in old.row_of


def test_refused_version_is_logged_remembered_and_old_keeps_serving(models_dir, caplog):
    failures = []
    store = ModelStore(models_dir, reload_interval=0, background=False, on_failure=lambda v, m: failures.append(v))
    good = store.refresh()
    bad = "20990101T000000Z-deadbeef"
    shutil.copytree(good.path, models_dir / bad)
    (models_dir / "CURRENT").write_text(bad + "\n")
    with caplog.at_level(logging.ERROR, logger="service.store"):
        for _ in range(5):
            assert store.refresh() is good
            os.utime(models_dir / "CURRENT")  # touched again: still not retried
    assert failures == [bad]
    assert "does not match the directory name" in store.failures[bad]
    refused = [r for r in caplog.records if "refusing model version" in r.getMessage()]
    assert len(refused) == 1 and bad in refused[0].getMessage()


def test_store_checks_current_at_most_every_interval(models_dir, tiny_corpus, train_tiny):
    store = ModelStore(models_dir, reload_interval=3600, background=False)
    first = store.refresh()
    train_tiny(tiny_corpus[0], models_dir, n_components=3)
    assert store.current() is first  # not checked again yet
    assert store.refresh() is not first


def test_background_reload_swaps_without_blocking(models_dir, tiny_corpus, train_tiny):
    store = ModelStore(models_dir, reload_interval=0, background=True)
    first = store.refresh()
    new_version = train_tiny(tiny_corpus[0], models_dir, n_components=3)
    deadline = time.monotonic() + 20
    while store.current().version != new_version:
        assert time.monotonic() < deadline, "background reload did not happen"
        time.sleep(0.01)
    assert first.version != new_version


def test_missing_current_keeps_serving(models_dir):
    store = ModelStore(models_dir, reload_interval=0, background=False)
    model = store.refresh()
    (models_dir / "CURRENT").unlink()
    assert store.refresh() is model


# -- not ready, then ready -----------------------------------------------------------------

def test_not_ready_until_a_model_appears(tmp_path, tiny_corpus, train_tiny):
    from service import create_app

    models_dir = tmp_path / "empty"
    app = create_app({"models_dir": str(models_dir), "reload_interval": 0, "retry_after": 7})
    client = app.test_client()
    for method, url, kwargs, code in [
        ("get", "/readyz", {}, "not_ready"), ("get", "/articles/energy-0/related", {}, "model_unavailable"),
        ("post", "/related", {"json": {"body": "oil"}}, "model_unavailable"), ("get", "/model", {}, "model_unavailable"),
    ]:
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
        assert response.get_json()["error"]["code"] == code
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    version = train_tiny(tiny_corpus[0], models_dir)
    deadline = time.monotonic() + 20
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the new model was not picked up"
        time.sleep(0.02)
    assert client.get("/readyz").get_json()["model_version"] == version
    assert client.get("/articles/energy-0/related").status_code == 200


# -- swap under load -------------------------------------------------------------------------

def test_swap_under_load_zero_errors_and_one_version_per_response(tmp_path, train_tiny):
    from service import create_app

    corpora = []
    for n in range(4):
        path = tmp_path / f"corpus-{n}.jsonl"
        make_tiny_corpus(path, seed=n, title_tag=f" [v{n}]")
        corpora.append(path)
    models_dir = tmp_path / "models"
    tags = {train_tiny(corpora[0], models_dir): " [v0]"}
    app = create_app({"models_dir": str(models_dir), "reload_interval": 0})
    stop = threading.Event()
    results: list[tuple[int, str, dict | None]] = []
    lock = threading.Lock()

    def query(worker: int) -> None:
        client = app.test_client()
        i = 0
        while not stop.is_set():
            i += 1
            if i % 3 == 0:
                response = client.post("/related", json={"body": "oil crude election vote"})
            else:
                response = client.get(f"/articles/{'energy-0' if i % 2 else 'space-5'}/related?k={1 + i % 6}")
            body = response.get_json(silent=True)
            with lock:
                results.append((response.status_code, response.headers.get("X-Model-Version"), body))

    threads = [threading.Thread(target=query, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    try:
        for n in range(1, 4):
            time.sleep(0.3)
            tags[train_tiny(corpora[n], models_dir)] = f" [v{n}]"
        deadline = time.monotonic() + 30
        while app.extensions["related"].store.model.version != list(tags)[-1]:
            assert time.monotonic() < deadline, "the last version was never loaded"
            time.sleep(0.05)
        time.sleep(0.3)  # requests started before the swap have finished
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(results) > 50
    assert [r for r in results if r[0] != 200] == []
    seen = set()
    for _, header, body in results:
        assert body["model_version"] == header
        tag = tags[header]
        titles = [item["title"] for item in body["related"]] + ([body["article"]["title"]] if "article" in body else [])
        assert titles and all(title.endswith(tag) for title in titles), (header, titles)
        seen.add(header)
    assert len(seen) >= 2  # the swap happened while querying
    assert results[-1][1] == list(tags)[-1]
