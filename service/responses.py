"""Precomputed response bytes and headers, ETags, conditional requests and CORS headers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

JSON_TYPE = "application/json"


def json_bytes(payload: Any) -> bytes:
    """Serialise ``payload`` as compact UTF-8 JSON (non-ASCII kept as is)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def make_etag(version: str, query_key: str) -> str:
    """Return a strong ETag from the model version and the normalised query (no JSON involved).

    Parameters
    ----------
    version : str
        Served model version.
    query_key : str
        Normalised query, e.g. ``"article=wikinews-736&k=5"``.

    Returns
    -------
    str
        A quoted 16-hex-digit tag, e.g. ``'"3f2a9c1d0b4e5a67"'``.
    """
    digest = hashlib.blake2b(f"{version}\x00{query_key}".encode("utf-8", "surrogatepass"), digest_size=8)
    return f'"{digest.hexdigest()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Tell whether an ``If-None-Match`` header value matches ``etag`` (weak comparison, ``*``)."""
    if not if_none_match:
        return False
    if if_none_match == etag:
        return True
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def cors_headers(origin: str | None, allowed: Sequence[str]) -> list[tuple[str, str]]:
    """Return the CORS headers for a request from ``origin`` given the allowed origins.

    Parameters
    ----------
    origin : str or None
        The request's ``Origin`` header.
    allowed : sequence of str
        Allowed origins; ``"*"`` allows any; empty disables CORS.

    Returns
    -------
    list of (name, value)
    """
    if not allowed:
        return []
    headers = [("Access-Control-Expose-Headers", "ETag, X-Model-Version")]
    if "*" in allowed:
        return [("Access-Control-Allow-Origin", "*"), *headers]
    headers.append(("Vary", "Origin"))
    if origin and origin in allowed:
        headers.insert(0, ("Access-Control-Allow-Origin", origin))
    return headers


@dataclass(frozen=True)
class CachedResponse:
    """A fully serialised 200 answer plus what a 304 for it needs; shared by all requests for it."""

    etag: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    not_modified_headers: tuple[tuple[str, str], ...]

    @classmethod
    def build(cls, body: bytes, etag: str, version: str, max_age: int) -> CachedResponse:
        """Precompute the headers of the 200 and the 304 answers.

        Parameters
        ----------
        body : bytes
            The serialised JSON body.
        etag : str
            Its ETag (see :func:`make_etag`).
        version : str
            Model version (``X-Model-Version``).
        max_age : int
            ``Cache-Control`` max-age in seconds.
        """
        common = (("ETag", etag), ("X-Model-Version", version), ("Cache-Control", f"public, max-age={max_age}"))
        full = (("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))), *common)
        return cls(etag=etag, body=body, headers=full, not_modified_headers=common)

    def answer(self, if_none_match: str | None) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        """Return ``(status, headers, body)``: 304 with no body when ``if_none_match`` matches."""
        if if_none_match and etag_matches(if_none_match, self.etag):
            return 304, self.not_modified_headers, b""
        return 200, self.headers, self.body
