"""ModelStore: watch models/CURRENT and swap to a newly verified version without dropping requests."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from service.model import LoadedModel, ModelError, load_version

log = logging.getLogger(__name__)


class ModelStore:
    """Serve the version named by ``models_dir/CURRENT``, checking it at most every ``reload_interval`` s.

    A new version is loaded beside the served one (in a background thread unless
    ``background=False``) and swapped in with a single reference assignment, so a request
    that already holds the old :class:`LoadedModel` finishes on it. A version that fails
    verification is logged, remembered in :attr:`failures` and never retried.

    Parameters
    ----------
    models_dir : str or Path
        Directory holding ``CURRENT`` and the version directories.
    reload_interval : float
        Seconds between ``os.stat`` checks of ``CURRENT``.
    cache_size : int
        Response cache entries per loaded version.
    background : bool
        Load new versions in a background thread (requests keep the old version meanwhile).
    on_load, on_failure : callable, optional
        Called with the new :class:`LoadedModel`, or with ``(version, message)``.
    """

    def __init__(self, models_dir: str | Path, *, reload_interval: float = 1.0, cache_size: int = 4096,
                 background: bool = True, on_load: Callable[[LoadedModel], None] | None = None,
                 on_failure: Callable[[str, str], None] | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.reload_interval = reload_interval
        self.cache_size = cache_size
        self.background = background
        self.failures: dict[str, str] = {}
        self._on_load = on_load
        self._on_failure = on_failure
        self._model: LoadedModel | None = None
        self._lock = threading.Lock()  # held while checking or loading; never while serving
        self._seen: tuple[int, int, int] | None = None
        self._next_check = 0.0

    @property
    def model(self) -> LoadedModel | None:
        """The version being served (None before the first valid one), without checking CURRENT."""
        return self._model

    def current(self) -> LoadedModel | None:
        """Return the served version, first checking CURRENT when ``reload_interval`` has passed."""
        if time.monotonic() >= self._next_check:
            self._check(inline=not self.background, wait=False)
        return self._model

    def refresh(self) -> LoadedModel | None:
        """Check CURRENT now and load a new version in this thread; return the served version."""
        self._check(inline=True, wait=True)
        return self._model

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.models_dir / "CURRENT")
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read_current(self) -> str | None:
        try:
            text = (self.models_dir / "CURRENT").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read %s: %s", self.models_dir / "CURRENT", exc)
            return None
        return text.strip()

    def _check(self, *, inline: bool, wait: bool) -> None:
        if not self._lock.acquire(blocking=wait):
            return  # another thread is checking or loading; keep serving what we have
        handed_off = False
        try:
            self._next_check = time.monotonic() + self.reload_interval
            seen = self._stat()
            if seen is None or seen == self._seen:
                if seen is None and self._seen is not None:
                    log.warning("%s disappeared; still serving %s", self.models_dir / "CURRENT",
                                self._model.version if self._model else "nothing")
                self._seen = seen
                return
            self._seen = seen
            version = self._read_current()
            if not version or version in self.failures:
                return
            if self._model is not None and version == self._model.version:
                return
            if inline:
                self._load(version)
            else:
                thread = threading.Thread(target=self._load_and_release, args=(version,),
                                          name=f"model-load-{version}", daemon=True)
                thread.start()
                handed_off = True
        finally:
            if not handed_off:
                self._lock.release()

    def _load_and_release(self, version: str) -> None:
        try:
            self._load(version)
        finally:
            self._lock.release()

    def _load(self, version: str) -> None:
        started = time.perf_counter()
        try:
            model = load_version(self.models_dir, version, cache_size=self.cache_size)
        except ModelError as exc:
            self._refuse(version, str(exc))
            return
        except Exception as exc:  # anything unexpected still must not take the service down
            log.exception("unexpected error loading model version %s", version)
            self._refuse(version, f"{type(exc).__name__}: {exc}")
            return
        previous = self._model
        self._model = model  # the swap: one reference; requests in flight keep theirs
        log.info("serving model version %s (%d articles, loaded in %.2f s; previous %s)", version,
                 model.n_articles, time.perf_counter() - started, previous.version if previous else None)
        if self._on_load is not None:
            self._on_load(model)

    def _refuse(self, version: str, message: str) -> None:
        self.failures[version] = message
        log.error("refusing model version %s: %s; still serving %s", version, message,
                  self._model.version if self._model else "nothing")
        if self._on_failure is not None:
            self._on_failure(version, message)
