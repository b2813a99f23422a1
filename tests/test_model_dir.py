"""training.model_dir: the documented files, checksums, atomic CURRENT, pruning, kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.planted import planted_corpus, random_corpus, write_jsonl
from training import model_dir, version_writer
from training.model_dir import ModelDirError
from training.pipeline import train

REPO = Path(__file__).resolve().parents[1]
FORMAT_DOC = REPO / "docs" / "model-format.md"
VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def documented_files() -> set[str]:
    """File names of a version directory, as listed in docs/model-format.md's tree."""
    tree = FORMAT_DOC.read_text().split("```")[1]
    return set(re.findall(r"^\s+([\w.]+\.(?:npy|json|joblib|jsonl))\b", tree, flags=re.M))


def documented_manifest_keys() -> set[str]:
    """Top-level keys of the manifest example in docs/model-format.md."""
    block = FORMAT_DOC.read_text().split("```json")[1].split("```")[0]
    return set(json.loads(block))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store holding one version trained on the planted corpus (with an extra field)."""
    root = tmp_path_factory.mktemp("trained")
    records = [dict(r, section="world", published_at="2024-05-0%dT12:00:00Z" % (i % 9 + 1))
               for i, r in enumerate(planted_corpus().records)]
    del records[2]["published_at"]
    corpus = write_jsonl(root / "corpus.jsonl", records)
    result = train(corpus, root / "models", neighbors=8, n_jobs=1,
                   vectorizer_params={"n_components": 3})
    return result, records, corpus


def test_publish_writes_every_documented_file(trained):
    result, _, _ = trained
    assert len(documented_files()) >= 12  # the parse of the doc found the tree
    assert {p.name for p in result.path.iterdir()} == documented_files()
    assert VERSION_RE.match(result.version) and result.path.name == result.version
    assert model_dir.current_version(result.path.parent) == result.version
    assert (result.path.parent / model_dir.CURRENT).read_text() == result.version + "\n"


def test_arrays_have_the_documented_dtypes_and_shapes(trained):
    result, records, _ = trained
    n, path = len(records), result.path
    load = {p.stem: np.load(p, mmap_mode="r", allow_pickle=False) for p in path.glob("*.npy")}
    assert load["article_ids"].dtype.kind == "U"
    assert load["article_ids"].tolist() == [r["id"] for r in records]
    idx, scores = load["neighbors_indices"], load["neighbors_scores"]
    assert idx.dtype == np.int32 and scores.dtype == np.float32
    assert idx.shape == scores.shape == (n, 8)
    assert (scores[idx == -1] == 0).all() and (idx >= -1).all() and (idx < n).all()
    assert load["vectors_sparse_data"].dtype == np.float32
    assert load["vectors_sparse_indices"].dtype == np.int32
    indptr = load["vectors_sparse_indptr"]
    assert indptr.dtype == np.int64 and indptr.shape == (n + 1,)
    assert indptr[-1] == len(load["vectors_sparse_data"]) == len(load["vectors_sparse_indices"])
    assert load["vectors_dense"].dtype == np.float32 and load["vectors_dense"].shape == (n, 3)
    published = load["published"]
    assert published.dtype == np.float64 and published.shape == (n,)
    assert np.isnan(published[2])
    assert published[0] == datetime(2024, 5, 1, 12, tzinfo=timezone.utc).timestamp()
    offsets = load["texts_offsets"]
    assert offsets.dtype == np.int64 and offsets.shape == (n + 1,)
    raw = (path / "texts.jsonl").read_bytes()
    assert offsets[-1] == len(raw)
    for i in (0, 5, n - 1):
        text = json.loads(raw[offsets[i]:offsets[i + 1]])
        record = records[i]
        assert text == {"id": record["id"], "title": record["title"], "body": record["body"]}


def test_articles_jsonl_holds_metadata_and_extras_but_no_body(trained):
    result, records, _ = trained
    rows = model_dir.read_articles(result.path)
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    for row, record in zip(rows, records):
        assert {"id", "title", "url", "published_at", "tags", "section"} <= set(row)
        assert "body" not in row and row["section"] == "world" and row["tags"] == record["tags"]


def test_manifest_checksums_every_file_and_verifies(trained):
    result, records, corpus = trained
    manifest = model_dir.verify(result.path)
    assert manifest["format_version"] == model_dir.FORMAT_VERSION == 1
    assert manifest["version"] == result.version
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", manifest["created_at"])
    others = {p.name for p in result.path.iterdir()} - {model_dir.MANIFEST, model_dir.CHECKED}
    assert set(manifest["files"]) == others
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((result.path / name).read_bytes()).hexdigest() == digest
    assert manifest["corpus"]["sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert manifest["corpus"]["records"] == manifest["counts"]["articles"] == len(records)
    assert manifest["counts"]["neighbors"] == 8 and manifest["counts"]["latent_dims"] == 3
    assert manifest["params"]["vectorizer"]["n_components"] == 3


def test_manifest_has_every_documented_key(trained):
    manifest = model_dir.read_manifest(trained[0].path)
    assert documented_manifest_keys() - set(manifest) == set()


@pytest.fixture
def copy_of(trained, tmp_path):
    """A private copy of the trained version, safe to tamper with."""
    src = trained[0].path
    dst = tmp_path / src.name
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


@pytest.mark.parametrize("name", sorted(documented_files() - {model_dir.MANIFEST, model_dir.CHECKED}))
def test_verify_detects_a_tampered_or_missing_file(copy_of, name):
    target = copy_of / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match=re.escape(str(target)) + ": checksum mismatch"):
        model_dir.verify(copy_of)
    target.unlink()
    with pytest.raises(ModelDirError, match=re.escape(str(target)) + ": missing"):
        model_dir.verify(copy_of)


def test_verify_refuses_an_unknown_format_version(copy_of):
    manifest = json.loads((copy_of / model_dir.MANIFEST).read_text())
    manifest["format_version"] = 2
    (copy_of / model_dir.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelDirError, match="unknown format_version 2"):
        model_dir.verify(copy_of)


class FakeClock:
    """Stands in for ``datetime`` in model_dir: ``now()`` returns a chosen time."""

    def __init__(self, step: timedelta):
        self.t, self.step = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc), step

    def now(self, tz=None):
        self.t += self.step
        return self.t


def publish_small(root: Path, tag: int, keep: int = 3, **overrides) -> str:
    """Publish a tiny hand-made version whose content depends on ``tag``."""
    kwargs = dict(
        arrays={"article_ids": np.array(["a", "b"]), "marker": np.array([tag, tag])},
        articles=[{"id": "a"}, {"id": "b"}], texts=[{"id": "a"}, {"id": "b"}],
        vectorizer={"tag": tag}, manifest={"parent_version": None}, keep=keep,
    )
    kwargs.update(overrides)
    return model_dir.publish(root, **kwargs)


def test_keep_prunes_old_versions(tmp_path, monkeypatch):
    monkeypatch.setattr(model_dir, "datetime", FakeClock(timedelta(seconds=1)))
    published = [publish_small(tmp_path, tag, keep=2) for tag in range(5)]
    assert model_dir.list_versions(tmp_path) == published[-2:]
    assert model_dir.current_version(tmp_path) == published[-1]


def test_keep_prunes_by_publication_order_within_one_second(tmp_path, monkeypatch):
    # Two trainings may finish within the same second (e.g. in a retrain loop or in tests):
    # the newest versions must still be the ones kept.
    monkeypatch.setattr(model_dir, "datetime", FakeClock(timedelta(0)))
    published = [publish_small(tmp_path, tag, keep=2) for tag in range(5)]
    assert model_dir.list_versions(tmp_path) == published[-2:]


def test_prune_never_removes_the_served_version(tmp_path, monkeypatch):
    monkeypatch.setattr(model_dir, "datetime", FakeClock(timedelta(seconds=1)))
    published = [publish_small(tmp_path, tag) for tag in range(3)]
    model_dir.set_current(tmp_path, published[0])  # rolled back to the oldest
    removed = model_dir.prune(tmp_path, keep=1)
    assert removed == [published[1]]
    assert model_dir.list_versions(tmp_path) == [published[0], published[2]]
    model_dir.verify(tmp_path / published[0])
    with pytest.raises(ValueError, match="keep"):
        publish_small(tmp_path, 9, keep=0)


def test_current_is_replaced_atomically(tmp_path):
    a, b = publish_small(tmp_path, 1), publish_small(tmp_path, 2)
    seen, stop = set(), threading.Event()

    def reader():
        while not stop.is_set():
            seen.add((tmp_path / model_dir.CURRENT).read_text())  # never missing, never partial

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(100):  # a plain open("w") + write is caught within a few
            model_dir.set_current(tmp_path, (a, b)[i % 2])
    finally:
        stop.set()
        thread.join()
    assert seen <= {a + "\n", b + "\n"} and seen
    assert not list(tmp_path.glob(model_dir.TMP_PREFIX + "*"))
    with pytest.raises(ModelDirError, match="not a model version"):
        model_dir.set_current(tmp_path, "20300101T000000Z-deadbeef")
    assert model_dir.current_version(tmp_path) == b


class Unpicklable:
    """A 'vectorizer' that cannot be pickled."""

    def __reduce__(self):
        raise TypeError("cannot pickle this vectorizer")


def failing_rows():
    yield {"id": "a"}
    raise RuntimeError("corpus vanished mid-write")


@pytest.mark.parametrize("overrides, error, match", [
    ({"vectorizer": Unpicklable()}, TypeError, "cannot pickle"),
    ({"arrays": {"article_ids": np.array(["a", None], dtype=object)}}, TypeError, "article_ids"),
    ({"articles": failing_rows()}, RuntimeError, "mid-write"),
], ids=["unpicklable-vectorizer", "object-array", "failing-rows"])
def test_failed_publish_leaves_the_store_untouched(tmp_path, overrides, error, match):
    served = publish_small(tmp_path, 1)
    with pytest.raises(error, match=match):
        publish_small(tmp_path, 2, **overrides)
    assert model_dir.current_version(tmp_path) == served
    assert model_dir.list_versions(tmp_path) == [served]
    model_dir.verify(tmp_path / served)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([model_dir.CURRENT, served])


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_publish_cleans_stale_temporaries_of_dead_processes_only(tmp_path):
    pid = dead_pid()
    stale_dir = tmp_path / f"{model_dir.TMP_PREFIX}{pid}-abc"
    stale_dir.mkdir()
    (stale_dir / "article_ids.npy").write_bytes(b"half written")
    stale_file = tmp_path / f"{model_dir.TMP_PREFIX}{pid}-def.current"  # a set_current cut short
    stale_file.write_text("x")
    live = tmp_path / f"{model_dir.TMP_PREFIX}{os.getppid()}-ghi"  # another live writer
    live.mkdir()
    publish_small(tmp_path, 1)
    assert not stale_dir.exists()
    assert live.exists()
    assert not stale_file.exists()


def test_resolve_names_what_is_wrong(tmp_path):
    with pytest.raises(ModelDirError, match="no model yet"):
        model_dir.resolve(tmp_path)
    version = publish_small(tmp_path, 1)
    assert model_dir.resolve(tmp_path) == tmp_path / version
    with pytest.raises(ModelDirError, match="invalid version id"):
        model_dir.resolve(tmp_path, "../elsewhere")
    with pytest.raises(ModelDirError, match="version not found"):
        model_dir.resolve(tmp_path, "20300101T000000Z-deadbeef")


# -- kill -9 in the middle of `related train` ------------------------------------------------

TRAIN = [sys.executable, "-c", "from training.cli import main; main()", "train",
         "--param", "n_components=8", "--neighbors", "10", "--jobs", "1"]


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory):
    """6,000 random-word articles with bulky metadata: `related train` takes a few seconds."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    return random_corpus(path, 6000, words_per_article=25, vocabulary=20000, zipf=0.0,
                         payload=1000)


def stale_temps(models: Path) -> list[Path]:
    return sorted(models.glob(model_dir.TMP_PREFIX + "*"))


@pytest.mark.slow
@pytest.mark.parametrize("when", [0.5, 1.5, 3.0, "publish"])
def test_kill_9_mid_train_keeps_the_served_version(tmp_path, big_corpus, when):
    models = tmp_path / "models"
    small = write_jsonl(tmp_path / "small.jsonl", planted_corpus().records)
    served = train(small, models, n_jobs=1, vectorizer_params={"n_components": 3}).version
    proc = subprocess.Popen([*TRAIN, "--corpus", str(big_corpus), "--models-dir", str(models)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        if when == "publish":  # the version is being written in its temporary directory
            deadline = time.monotonic() + 120
            while proc.poll() is None and not stale_temps(models) and time.monotonic() < deadline:
                time.sleep(0.001)
        else:
            try:
                proc.wait(timeout=when)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group: the trainer and any worker
        proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    assert killed or proc.returncode == 0, f"train exited with {proc.returncode}"
    if killed:  # CURRENT names the old version, or the new one if the kill came after set_current
        current = model_dir.current_version(models)
        if current != served:
            assert json.loads((models / current / "manifest.json").read_text())["corpus"]["path"] == str(big_corpus)
            model_dir.verify(models / current)
    if when == "publish":
        assert killed and stale_temps(models), "the kill did not land while publishing"
    for version in model_dir.list_versions(models):  # nothing half-written is a version
        model_dir.verify(models / version)
    model_dir.verify(model_dir.resolve(models))

    again = train(small, models, n_jobs=1, vectorizer_params={"n_components": 4})
    assert stale_temps(models) == []
    assert model_dir.current_version(models) == again.version
    model_dir.verify(models / served)


@pytest.mark.parametrize("array", [np.arange(10, dtype=np.int32), np.zeros((3, 0), np.float32),
                                   np.array(["ab", "cdé"]), np.arange(35, dtype=np.float32).reshape(5, 7)[:, ::2],
                                   np.zeros(0, np.int64)], ids=["int", "empty-2d", "str", "strided", "empty"])
def test_arrays_are_written_as_np_save_writes_them_with_their_checksum(tmp_path, array):
    np.save(tmp_path / "a.npy", array, allow_pickle=False)
    digest = version_writer._save_npy((tmp_path / "b.npy", array))
    assert (tmp_path / "b.npy").read_bytes() == (tmp_path / "a.npy").read_bytes()
    assert digest == model_dir.sha256_file(tmp_path / "a.npy")


def test_verify_trusts_only_files_unchanged_since_they_were_checked(trained, monkeypatch):
    result, _, _ = trained
    hashed = []
    sha256_file = model_dir.sha256_file
    monkeypatch.setattr(model_dir, "sha256_file", lambda path: hashed.append(Path(path).name) or sha256_file(path))
    listed = set(model_dir.read_manifest(result.path)["files"])
    model_dir.verify(result.path)
    assert set(hashed) == listed  # the service's check hashes everything
    hashed.clear()
    time.sleep(0.05)  # past the clock tick of the record
    model_dir.verify(result.path, trust_checked=True)
    racy = set(hashed)  # written in the tick the record was: hashed anyway
    assert len(racy) < len(listed)
    # a file rewritten in place with the same size: its change time moves, it is hashed and refused
    target = result.path / "neighbors_scores.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    with open(target, "r+b") as fh:
        fh.write(bytes(data))
    hashed.clear()
    with pytest.raises(model_dir.ModelDirError, match="neighbors_scores.npy: checksum mismatch"):
        model_dir.verify(result.path, trust_checked=True)
    assert "neighbors_scores.npy" in hashed
    # without the record, everything is hashed
    (result.path / model_dir.CHECKED).unlink()
    target.write_bytes(bytes(data[:-1] + bytes([data[-1] ^ 0xFF])))
    hashed.clear()
    model_dir.verify(result.path, trust_checked=True)
    assert set(hashed) == listed
