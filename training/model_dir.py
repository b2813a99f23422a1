"""The model directory: publish a version atomically, repoint CURRENT, list and prune versions."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from training.version_writer import EncodedLines

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORIZER = "vectorizer.joblib"
#: The vectorizer as plain data (training.plain_vectorizer), read without pickle.
PLAIN_VECTORIZER = ("vectorizer.json", "vectorizer_idf.npy", "vectorizer_components.npy")
ARTICLES = "articles.jsonl"
TEXTS = "texts.jsonl"
#: Each file's checksum and status when written (not in the manifest): `related update` skips
#: hashing again the parent files whose status has not changed since (see :func:`verify`).
CHECKED = "checked.json"
TMP_PREFIX = ".tmp-"


class ModelDirError(RuntimeError):
    """A model directory or version that cannot be read."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks (the one checksum of corpora and model files).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _each_file(func: Any, paths: list[Any]) -> list[Any]:
    """``func`` of every path (or job), on a few threads (writes, hashing and fsync release the GIL)."""
    if len(paths) < 2:
        return [func(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(func, paths))


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def version_id(digest: str, now: datetime | None = None) -> str:
    """A sortable version id: UTC time to the second plus a content hash prefix.

    Parameters
    ----------
    digest : str
        Hex digest of the version's content.
    now : datetime, optional

    Returns
    -------
    str
        For example ``20261129T103000Z-3f2a9c1d``.
    """
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{digest[:8]}"


def _clean_stale_tmp(models_dir: Path) -> None:
    for tmp in models_dir.glob(TMP_PREFIX + "*"):
        pid = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
        alive = pid.isdigit() and Path(f"/proc/{pid}").exists() and int(pid) != os.getpid()
        if not alive:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:  # a set_current() cut short leaves a file
                tmp.unlink(missing_ok=True)


def publish(
    models_dir: str | os.PathLike,
    *,
    arrays: Mapping[str, np.ndarray],
    articles: Iterable[Mapping[str, Any] | bytes] | EncodedLines,
    texts: Iterable[Mapping[str, Any] | bytes] | EncodedLines,
    vectorizer: Any,
    manifest: dict[str, Any],
    keep: int = 3,
) -> str:
    """Write a complete version in a temporary directory, rename it into place, repoint CURRENT.

    A failure or a kill at any point leaves CURRENT and the versions it names untouched.
    :class:`training.version_writer.VersionWriter` does the work; use it directly to write
    some arrays early.

    Parameters
    ----------
    models_dir : path-like
        The model store (created if missing).
    arrays : mapping of file stem to numpy array
        Saved as ``<stem>.npy`` (no pickled objects).
    articles, texts : iterables of dicts, or EncodedLines
        One per row: display metadata and display text (see docs/model-format.md); a
        ``bytes`` item is an already encoded line (see :func:`training.version_writer.jsonl_line`).
    vectorizer : fitted ArticleVectorizer, or path-like
        A path names an existing ``vectorizer.joblib`` of a verified version, hard-linked
        (copied where links fail) with the plain files beside it instead of written again;
        their checksums are taken from that version's manifest.
    manifest : dict
        Everything but ``version``, ``format_version`` and ``files``, which are filled in.
    keep : int
        Versions to keep after publishing (the served one is never removed).

    Returns
    -------
    str
        The new version id.
    """
    from training.version_writer import VersionWriter

    VersionWriter.check_keep(keep)  # before the store is touched
    with VersionWriter(models_dir) as writer:
        return writer.publish(arrays=arrays, articles=articles, texts=texts, vectorizer=vectorizer,
                              manifest=manifest, keep=keep)


def set_current(models_dir: str | os.PathLike, version: str) -> None:
    """Atomically make ``version`` the served one (write a temp file, fsync, ``os.replace``).

    Parameters
    ----------
    models_dir : path-like
    version : str
        Must name an existing version directory.
    """
    root = Path(models_dir)
    if not (root / version / MANIFEST).is_file():
        raise ModelDirError(f"{root / version}: not a model version")
    tmp = root / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}.current"
    with open(tmp, "w") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    _fsync_path(root)


def current_version(models_dir: str | os.PathLike) -> str | None:
    """The version named by ``CURRENT``, or None when there is none.

    Parameters
    ----------
    models_dir : path-like

    Returns
    -------
    str or None
    """
    try:
        text = (Path(models_dir) / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


def list_versions(models_dir: str | os.PathLike) -> list[str]:
    """Published versions, oldest first (by ``created_at``, then the manifest's mtime, then id).

    Parameters
    ----------
    models_dir : path-like

    Returns
    -------
    list of str
    """
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file():
            try:
                created = str(json.loads((p / MANIFEST).read_text()).get("created_at", ""))
                written = (p / MANIFEST).stat().st_mtime_ns
            except (OSError, ValueError):
                created, written = "", 0
            found.append((created, written, p.name))
    return [name for *_, name in sorted(found)]


def prune(models_dir: str | os.PathLike, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` versions, never the served one.

    Parameters
    ----------
    models_dir : path-like
    keep : int

    Returns
    -------
    list of str
        The versions removed.
    """
    served = current_version(models_dir)
    versions = list_versions(models_dir)
    doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != served]
    for v in doomed:
        shutil.rmtree(Path(models_dir) / v, ignore_errors=True)
    return doomed


def resolve(models_dir: str | os.PathLike, version: str | None = None) -> Path:
    """Directory of ``version`` (default: the current one), checked to exist.

    Parameters
    ----------
    models_dir : path-like
    version : str, optional

    Returns
    -------
    pathlib.Path
    """
    root = Path(models_dir)
    version = version or current_version(root)
    if version is None:
        raise ModelDirError(f"{root}: no model yet (no {CURRENT}); run `related train` first")
    if "/" in version or version.startswith("."):
        raise ModelDirError(f"invalid version id {version!r}")
    path = root / version
    if not (path / MANIFEST).is_file():
        raise ModelDirError(f"{path}: version not found")
    return path


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a version directory.

    Parameters
    ----------
    path : path-like
        A version directory.

    Returns
    -------
    dict
    """
    manifest = json.loads((Path(path) / MANIFEST).read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelDirError(f"{path}: unknown format_version {manifest.get('format_version')!r}")
    return manifest


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def _unchanged_since_checked(path: Path, listed: Mapping[str, str]) -> set[str]:
    """Files whose status is the one recorded with their manifest checksum (git's index trusts the same)."""
    try:
        recorded = json.loads((path / CHECKED).read_bytes())
        written = os.stat(path / CHECKED).st_mtime_ns
    except (OSError, ValueError):
        return set()
    out = set()
    for name, entry in recorded.items() if isinstance(recorded, dict) else ():
        try:
            now = _stat_key(os.stat(path / name))
        except OSError:
            continue
        # changed in the clock tick the record was written: its status cannot tell (racy), hash it
        if isinstance(entry, list) and entry[:4] == now and entry[4:] == [listed.get(name)] and now[3] < written:
            out.add(name)
    return out


def verify(path: str | os.PathLike, only: Iterable[str] | None = None, skip: Iterable[str] = (),
           trust_checked: bool = False) -> dict[str, Any]:
    """Check that every file of a version exists with the manifest's sha256.

    Parameters
    ----------
    path : path-like
        A version directory.
    only : iterable of str, optional
        Check only these files (default: all the manifest lists).
    skip : iterable of str
        Files not to check (checked elsewhere).
    trust_checked : bool
        Skip the files whose size, inode and modification and change times are those
        recorded when they were written and checked (:func:`training.version_writer.write_checked`): any write,
        truncation or replacement since changes them; silent decay of the medium does not.

    Returns
    -------
    dict
        The manifest.
    """
    manifest = read_manifest(path)
    listed = manifest.get("files", {})
    names = [name for name in (listed if only is None else only) if name not in set(skip)]
    unlisted = [name for name in names if name not in listed]
    if unlisted:
        raise ModelDirError(f"{Path(path) / unlisted[0]}: not in the manifest")
    if trust_checked:
        unchanged = _unchanged_since_checked(Path(path), listed)
        names = [name for name in names if name not in unchanged]
    files = [(Path(path) / name, listed[name]) for name in names]
    for file, _ in files:
        if not file.is_file():
            raise ModelDirError(f"{file}: missing")
    for (file, digest), actual in zip(files, _each_file(sha256_file, [f for f, _ in files])):
        if actual != digest:
            raise ModelDirError(f"{file}: checksum mismatch")
    return manifest


def load_array(path: str | os.PathLike, name: str, mmap: bool = True) -> np.ndarray:
    """Load ``<name>.npy`` of a version without pickle, memory-mapped by default.

    Parameters
    ----------
    path : path-like
        A version directory.
    name : str
        File stem, e.g. ``"neighbors_indices"``.
    mmap : bool

    Returns
    -------
    numpy.ndarray
    """
    return np.load(Path(path) / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)


def read_articles(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-row article metadata of a version.

    Parameters
    ----------
    path : path-like
        A version directory.

    Returns
    -------
    list of dict
    """
    with open(Path(path) / ARTICLES, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]
