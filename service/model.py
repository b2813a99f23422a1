"""Load and verify one model version directory into an immutable, memory-mapped LoadedModel."""

from __future__ import annotations

import json
import mmap
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp

from service.cache import LRUCache
from service.ids import IdIndex
from training.model_dir import sha256_file

FORMAT_VERSIONS = frozenset({1})
ARRAY_FILES = (
    "article_ids.npy", "neighbors_indices.npy", "neighbors_scores.npy",
    "vectors_sparse_data.npy", "vectors_sparse_indices.npy", "vectors_sparse_indptr.npy",
    "vectors_dense.npy", "published.npy",
)
REQUIRED_FILES = ARRAY_FILES + ("vectorizer.joblib", "articles.jsonl")
PUBLIC_FIELDS = ("id", "title", "url", "published_at", "tags")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelError(Exception):
    """A model version that cannot be served; the message says which file and why."""


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One verified model version; arrays are read-only memory maps shared between workers."""

    version: str
    path: Path
    manifest: dict[str, Any]
    article_ids: np.ndarray
    row_of: IdIndex
    neighbors_indices: np.ndarray
    neighbors_scores: np.ndarray
    vectors_sparse: sp.csr_matrix
    vectors_dense: np.ndarray
    published: np.ndarray
    vectorizer: Any
    created_at: float
    loaded_at: float
    array_bytes: int
    responses: LRUCache
    _articles: mmap.mmap = field(repr=False)
    _offsets: np.ndarray = field(repr=False)

    @property
    def n_articles(self) -> int:
        """Number of articles (rows) in the model."""
        return len(self.article_ids)

    @property
    def n_neighbors(self) -> int:
        """Length of the precomputed neighbour list of every article."""
        return self.neighbors_indices.shape[1]

    @property
    def text_fields(self) -> tuple[str, ...]:
        """Text fields the vectorizer reads (from the manifest)."""
        return tuple(self.manifest["fields"]["text_fields"])

    def article(self, row: int) -> dict[str, Any]:
        """Return the full stored record of ``row`` (everything in articles.jsonl, no body)."""
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        return json.loads(self._articles[start:end])

    def public_article(self, row: int) -> dict[str, Any]:
        """Return the fields of ``row`` shown to API clients: id, title, url, published_at, tags."""
        record = self.article(row)
        return {name: record.get(name) for name in PUBLIC_FIELDS}


def _fail(path: Path, message: str) -> ModelError:
    return ModelError(f"{path}: {message}")


def _read_manifest(path: Path, version: str) -> dict[str, Any]:
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path / "manifest.json", f"cannot read the manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise _fail(path / "manifest.json", "the manifest is not a JSON object")
    if manifest.get("format_version") not in FORMAT_VERSIONS:
        raise _fail(path / "manifest.json", f"unknown format_version {manifest.get('format_version')!r}; "
                    f"this service reads {sorted(FORMAT_VERSIONS)}")
    if manifest.get("version") != version:
        raise _fail(path / "manifest.json", f"version {manifest.get('version')!r} does not match "
                    f"the directory name {version!r}")
    for key in ("files", "fields", "counts"):
        if not isinstance(manifest.get(key), dict):
            raise _fail(path / "manifest.json", f"missing or invalid {key!r}")
    text_fields = manifest["fields"].get("text_fields")
    if not isinstance(text_fields, list) or not all(isinstance(f, str) for f in text_fields):
        raise _fail(path / "manifest.json", "fields.text_fields must be a list of strings")
    return manifest


def _verify_files(path: Path, files: dict[str, Any]) -> None:
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise _fail(path / "manifest.json", f"'files' does not list {missing}")
    for name, expected in files.items():
        if not isinstance(name, str) or "/" in name or "\\" in name or name in {"", ".", ".."}:
            raise _fail(path / "manifest.json", f"'files' holds an invalid file name {name!r}")
        try:
            digest = sha256_file(path / name)
        except OSError as exc:
            raise _fail(path / name, f"cannot read: {exc.strerror}") from None
        if digest != expected:
            raise _fail(path / name, f"sha256 {digest} differs from the manifest's {expected!r}")


def _load_array(path: Path, name: str, kind: str, ndim: int) -> np.ndarray:
    try:
        array = np.load(path / name, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _fail(path / name, f"not a loadable .npy array: {exc}") from None
    if array.dtype.kind != kind or array.ndim != ndim:
        raise _fail(path / name, f"expected a {ndim}-d array of kind {kind!r}, got {array.dtype} {array.shape}")
    return array


def _check_shapes(path: Path, arrays: dict[str, np.ndarray], n: int) -> None:
    expect = {"neighbors_scores.npy": arrays["neighbors_indices.npy"].shape,
              "vectors_sparse_indptr.npy": (n + 1,),
              "vectors_sparse_indices.npy": arrays["vectors_sparse_data.npy"].shape,
              "published.npy": (n,), "neighbors_indices.npy": (n, arrays["neighbors_indices.npy"].shape[1])}
    for name, shape in expect.items():
        if arrays[name].shape != shape:
            raise _fail(path / name, f"shape {arrays[name].shape}, expected {shape}")
    if arrays["vectors_dense.npy"].shape[0] != n:
        raise _fail(path / "vectors_dense.npy", f"{arrays['vectors_dense.npy'].shape[0]} rows, expected {n}")
    indices = arrays["neighbors_indices.npy"]
    if indices.size and (indices.min() < -1 or indices.max() >= n):
        raise _fail(path / "neighbors_indices.npy", f"row numbers outside -1..{n - 1}")
    indptr = arrays["vectors_sparse_indptr.npy"]
    nnz = arrays["vectors_sparse_data.npy"].shape[0]
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        raise _fail(path / "vectors_sparse_indptr.npy", "not valid CSR row pointers")


def _sparse_matrix(path: Path, arrays: dict[str, np.ndarray], n: int) -> sp.csr_matrix:
    columns = arrays["vectors_sparse_indices.npy"]
    width = 1 + int(columns.max()) if columns.size else 0
    if columns.size and columns.min() < 0:
        raise _fail(path / "vectors_sparse_indices.npy", "negative column index")
    return sp.csr_matrix((arrays["vectors_sparse_data.npy"], columns, arrays["vectors_sparse_indptr.npy"]),
                         shape=(n, width), copy=False)


def _line_offsets(path: Path, buffer: mmap.mmap, n: int) -> np.ndarray:
    newlines = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8) == ord("\n"))
    if len(buffer) and buffer[-1:] != b"\n":
        newlines = np.append(newlines, len(buffer) - 1)
    if len(newlines) != n:
        raise _fail(path / "articles.jsonl", f"{len(newlines)} lines, expected {n} (one per article)")
    return np.concatenate(([0], newlines + 1)).astype(np.int64)


def _load_vectorizer(path: Path) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            vectorizer = joblib.load(path / "vectorizer.joblib", mmap_mode="r")
        except Exception as exc:  # unpickling can raise anything: refuse the version
            raise _fail(path / "vectorizer.joblib", f"cannot load: {type(exc).__name__}: {exc}") from None
    if caught:
        raise _fail(path / "vectorizer.joblib", f"loading warned: {caught[0].category.__name__}: {caught[0].message}")
    if not callable(getattr(vectorizer, "transform", None)):
        raise _fail(path / "vectorizer.joblib", f"{type(vectorizer).__name__} has no transform method")
    if callable(getattr(vectorizer, "plain", None)):
        vectorizer.plain()  # build the draft fast path now, not on the first POST
    return vectorizer


def _created_at(manifest: dict[str, Any], fallback: float) -> float:
    text = manifest.get("created_at")
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback


def load_version(models_dir: Path, version: str, cache_size: int = 4096) -> LoadedModel:
    """Load ``models_dir/version`` after checking its manifest, checksums and array shapes.

    Parameters
    ----------
    models_dir : Path
        Directory holding the version directories.
    version : str
        The version id (a directory name, never a path).
    cache_size : int
        Entries of the per-version response cache.

    Returns
    -------
    LoadedModel
        The verified model; its arrays are read-only memory maps.

    Raises
    ------
    ModelError
        When anything about the version is missing, corrupt or of an unknown format.
    """
    if not VERSION_RE.match(version) or ".." in version:
        raise ModelError(f"{models_dir}: invalid version id {version!r}")
    path = Path(models_dir) / version
    if not path.is_dir():
        raise _fail(path, "no such version directory")
    manifest = _read_manifest(path, version)
    _verify_files(path, manifest["files"])
    arrays = {name: _load_array(path, name, kind, ndim) for name, kind, ndim in (
        ("article_ids.npy", "U", 1), ("neighbors_indices.npy", "i", 2), ("neighbors_scores.npy", "f", 2),
        ("vectors_sparse_data.npy", "f", 1), ("vectors_sparse_indices.npy", "i", 1),
        ("vectors_sparse_indptr.npy", "i", 1), ("vectors_dense.npy", "f", 2), ("published.npy", "f", 1))}
    n = arrays["article_ids.npy"].shape[0]
    if n == 0:
        raise _fail(path / "article_ids.npy", "the model holds no articles")
    _check_shapes(path, arrays, n)
    row_of = IdIndex(arrays["article_ids.npy"])
    duplicates = row_of.duplicates()
    if duplicates:
        raise _fail(path / "article_ids.npy", f"{duplicates} duplicate article ids")
    with open(path / "articles.jsonl", "rb") as handle:
        try:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise _fail(path / "articles.jsonl", "empty file") from None
    offsets = _line_offsets(path, buffer, n)
    now = time.time()
    model = LoadedModel(
        version=version, path=path, manifest=manifest, article_ids=arrays["article_ids.npy"], row_of=row_of,
        neighbors_indices=arrays["neighbors_indices.npy"], neighbors_scores=arrays["neighbors_scores.npy"],
        vectors_sparse=_sparse_matrix(path, arrays, n), vectors_dense=arrays["vectors_dense.npy"],
        published=arrays["published.npy"], vectorizer=_load_vectorizer(path),
        created_at=_created_at(manifest, now), loaded_at=now,
        array_bytes=sum(a.nbytes for a in arrays.values()), responses=LRUCache(cache_size),
        _articles=buffer, _offsets=offsets)
    for row in {0, n - 1}:
        if model.article(row).get("id") != str(model.article_ids[row]):
            raise _fail(path / "articles.jsonl", f"line {row + 1} is not article {str(model.article_ids[row])!r}")
    return model
