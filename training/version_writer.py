"""Write one model version: files in a temporary directory, checksums, fsync, rename into the store."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from training import model_dir
from training.model_dir import ARTICLES, FORMAT_VERSION, MANIFEST, PLAIN_VECTORIZER, TEXTS, TMP_PREFIX, VECTORIZER


def _save_npy(job: tuple[Path, np.ndarray]) -> str:
    """Write an array as ``np.save`` does, fsync it, and return its sha256 (hashed from memory)."""
    path, array = job
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    meta = np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(header, meta)
    except ValueError:  # a header too long for format 1.0
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, meta)
    digest = hashlib.sha256(header.getvalue())
    data = memoryview(array.reshape(-1)).cast("B") if array.size else memoryview(b"")
    digest.update(data)
    with open(path, "wb") as fh:
        fh.write(header.getvalue())
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return digest.hexdigest()


def jsonl_line(row: Mapping[str, Any]) -> bytes:
    """One row as written to articles.jsonl / texts.jsonl (compact UTF-8 JSON and a newline).

    Parameters
    ----------
    row : mapping

    Returns
    -------
    bytes
    """
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@dataclass
class EncodedLines:
    """Rows of a JSON Lines file already encoded, as a few byte chunks (runs of rows copied from
    another version's file, new rows) and every row's start offset plus the file size."""

    chunks: list[bytes | memoryview]
    offsets: np.ndarray


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any] | bytes] | EncodedLines) -> np.ndarray:
    if isinstance(rows, EncodedLines):
        with open(path, "wb") as fh:
            for chunk in rows.chunks:
                fh.write(chunk)
        return np.asarray(rows.offsets, dtype=np.int64)
    offsets = [0]
    with open(path, "wb") as fh:
        for row in rows:
            line = row if isinstance(row, bytes) else jsonl_line(row)
            fh.write(line)
            offsets.append(offsets[-1] + len(line))
    return np.asarray(offsets, dtype=np.int64)


def _link_or_copy(source: Path, target: Path) -> bool:
    """Hard-link ``source`` at ``target`` (True), or copy it where links fail (False)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        return False
    return True


def write_checked(path: Path, files: Mapping[str, str]) -> None:
    """Record the checksum and file status of a version's files as they are now (:data:`training.model_dir.CHECKED`).

    Parameters
    ----------
    path : Path
        The version directory (or the temporary one being published).
    files : mapping of file name to sha256
    """
    entries = {name: [*model_dir._stat_key(os.stat(path / name)), digest] for name, digest in files.items()}
    (path / model_dir.CHECKED).write_text(json.dumps(entries, separators=(",", ":")))


class VersionWriter:
    """A version being written; arrays given early are written, hashed and synced on threads meanwhile.

    Use it as a context manager: leaving without :meth:`publish` (an error, a kill) removes
    the temporary directory, so the store and CURRENT stay as they were.

    Parameters
    ----------
    models_dir : path-like
        The model store (created if missing).
    """

    def __init__(self, models_dir: str | os.PathLike) -> None:
        self.models_dir = models_dir

    def __enter__(self) -> VersionWriter:
        self.root_ = Path(self.models_dir)
        self.root_.mkdir(parents=True, exist_ok=True)
        model_dir._clean_stale_tmp(self.root_)
        self.tmp_ = self.root_ / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        self.tmp_.mkdir()
        self.pool_ = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
        self.written_: dict[str, Future[str]] = {}
        self.version_: str | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool_.shutdown(wait=True, cancel_futures=True)
        if self.version_ is None:
            shutil.rmtree(self.tmp_, ignore_errors=True)

    @staticmethod
    def check_keep(keep: int) -> None:
        """Refuse a number of versions to keep below 1 (ValueError)."""
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")

    def add_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Start writing arrays as ``<stem>.npy`` (no pickled objects), hashed and synced on threads.

        Parameters
        ----------
        arrays : mapping of file stem to numpy array
            Not to be modified until :meth:`publish` returns.
        """
        for stem, array in arrays.items():
            array = np.asarray(array)
            if array.dtype.hasobject:
                raise TypeError(f"array {stem!r} holds Python objects; .npy files must not pickle")
            self.written_[f"{stem}.npy"] = self.pool_.submit(_save_npy, (self.tmp_ / f"{stem}.npy", array))

    def publish(
        self, *, arrays: Mapping[str, np.ndarray],
        articles: Iterable[Mapping[str, Any] | bytes] | EncodedLines,
        texts: Iterable[Mapping[str, Any] | bytes] | EncodedLines,
        vectorizer: Any, manifest: dict[str, Any], keep: int = 3,
    ) -> str:
        """Write the rest, rename the version into the store, repoint CURRENT, prune.

        Parameters are those of :func:`training.model_dir.publish`; ``arrays`` are the ones
        not given to :meth:`add_arrays`.

        Returns
        -------
        str
            The new version id.
        """
        self.check_keep(keep)
        tmp, root = self.tmp_, self.root_
        self.add_arrays(arrays)
        _write_jsonl(tmp / ARTICLES, articles)
        self.add_arrays({"texts_offsets": _write_jsonl(tmp / TEXTS, texts)})
        known: dict[str, str] = {}  # checksums of linked or copied files, from their version's manifest
        linked: set[str] = set()
        if isinstance(vectorizer, (str, os.PathLike)):
            source = Path(vectorizer).parent
            recorded = model_dir.read_manifest(source).get("files", {})
            for name in (VECTORIZER, *PLAIN_VECTORIZER):
                if (source / name).exists() or name == VECTORIZER:
                    if _link_or_copy(source / name, tmp / name):
                        linked.add(name)
                    if name in recorded:
                        known[name] = recorded[name]
        else:
            import joblib  # only here: `related update` links the parent's files

            joblib.dump(vectorizer, tmp / VECTORIZER)
            if callable(getattr(vectorizer, "plain", None)):
                plain = vectorizer.plain()
                (tmp / PLAIN_VECTORIZER[0]).write_bytes(plain.params_json())
                self.add_arrays(plain.arrays())
        written = {name: future.result() for name, future in self.written_.items()}  # re-raises a write error
        known.update(written)
        names = sorted(p for p in tmp.iterdir() if p.name not in known)
        files = dict(sorted({**known, **dict(zip((p.name for p in names),
                                                 self.pool_.map(model_dir.sha256_file, names)))}.items()))
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        now = datetime.now(timezone.utc)
        version = model_dir.version_id(digest, now)
        while (root / version).exists():
            version = model_dir.version_id(hashlib.sha256(version.encode()).hexdigest(), now)
        full = {
            "format_version": FORMAT_VERSION,
            "version": version,
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            **manifest,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
        # linked files are already on disk, written arrays were synced as they were written
        list(self.pool_.map(model_dir._fsync_path,
                            [p for p in tmp.iterdir() if p.name not in linked and p.name not in written]))
        model_dir._fsync_path(tmp)
        os.rename(tmp, root / version)
        self.version_ = version
        model_dir._fsync_path(root)
        model_dir.set_current(root, version)
        model_dir.prune(root, keep)
        # recorded last: pruning unlinks other links of the shared vectorizer files, which changes
        # their status (a cache: without it, or if it is lost, an update hashes every file)
        write_checked(root / version, files)
        return version
