"""The ranking pipeline with the newsroom rules: pins, hard filters, decay, dedupe + MMR, full scan, fallback."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from service.diversity import pair_similarities, select
from service.metadata import column_values, field_values, newest_first, tag_set
from service.model import LoadedModel
from service.params import RuleParams
from service.ranking import row_scores
from training.neighbors import MIN_SCORE

DAY = 86400.0
#: Smallest candidate pool handed to dedupe/MMR on a full scan (grown when too few survive).
MIN_POOL = 64


@dataclass
class Query:
    """The article the list is for: a stored row, or a draft's vectors and fields."""

    row: int | None
    sparse: sp.csr_matrix | None  # None for a stored row: read from the model when needed
    published: float
    tags: tuple[str, ...]
    record: Mapping[str, Any]
    related_ids: tuple[str, ...]
    scores_of: Callable[[], np.ndarray]
    _scores: np.ndarray | None = field(default=None, repr=False)

    def scores(self) -> np.ndarray:
        """Return (computed once) the similarity of the query to every stored article."""
        if self._scores is None:
            self._scores = self.scores_of()
        return self._scores

    def vector(self, model: LoadedModel) -> sp.csr_matrix:
        """Return the query's sparse vector, shape (1, V)."""
        return self.sparse if self.sparse is not None else model.vectors_sparse[self.row]

    def sims(self, model: LoadedModel, rows: np.ndarray) -> np.ndarray:
        """Return the similarity of the query to ``rows`` (pairwise for a stored query)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty(0, dtype=np.float32)
        if self.row is not None and self._scores is None and rows.size < 256:
            return pair_similarities(model, np.asarray([self.row]), rows)[0]
        return self.scores()[rows]


def stored_query(model: LoadedModel, row: int) -> Query:
    """Return the :class:`Query` for stored article ``row``."""
    record = model.article(row)
    related = record.get("related_ids")
    return Query(row=row, sparse=None, published=float(model.published[row]),
                 tags=tuple(t for t in record.get("tags") or [] if isinstance(t, str)), record=record,
                 related_ids=tuple(str(i) for i in related) if isinstance(related, list) else (),
                 scores_of=lambda: row_scores(model, row))


@dataclass(frozen=True)
class Item:
    """One related article: its row, the score it was ranked by, and why it is there."""

    row: int
    score: float
    reason: str


class Filters:
    """The hard filters of one request: self, exclusions, tags, same, filter, time windows."""

    def __init__(self, model: LoadedModel, query: Query, params: RuleParams, excluded_ids: Sequence[str],
                 excluded_tags: Sequence[str], reference: float) -> None:
        self.model = model
        self.query = query
        self.params = params
        ids = {*params.exclude, *excluded_ids}
        self.excluded_rows = np.asarray(sorted(model.row_of[i] for i in ids if i in model.row_of), dtype=np.int64)
        self.excluded_tags = frozenset({*params.exclude_tags, *(t.casefold() for t in excluded_tags)})
        self.same = {name: field_values(query.record.get(name)) for name in params.same}
        wanted: dict[str, set[str]] = {}
        for name, value in params.filters:
            wanted.setdefault(name, set()).add(value)
        self.wanted = wanted
        self.reference = reference

    def mask(self, rows: np.ndarray) -> np.ndarray:
        """Return which of ``rows`` pass every hard filter."""
        rows = np.asarray(rows, dtype=np.int64)
        keep = rows >= 0
        if self.query.row is not None:
            keep &= rows != self.query.row
        if self.excluded_rows.size:
            keep &= ~np.isin(rows, self.excluded_rows)
        params = self.params
        if params.max_age_days is not None or params.past_only:
            published = np.asarray(self.model.published, dtype=np.float64)[rows]
            with np.errstate(invalid="ignore"):
                if params.max_age_days is not None:
                    keep &= np.abs(published - self.reference) <= params.max_age_days * DAY
                if params.past_only:
                    keep &= published <= self.reference
        if self.excluded_tags or params.require_tags:
            tags = tag_set(self.model, rows)
            require = frozenset(params.require_tags)
            for i, row_tags in enumerate(tags):
                if keep[i] and ((row_tags & self.excluded_tags) or (require and not row_tags & require)):
                    keep[i] = False
        for name, wanted in [*self.same.items(), *self.wanted.items()]:
            if not wanted:  # same=FIELD where the query has no value: nothing is the same
                keep[:] = False
                break
            for i, row_values in enumerate(column_values(self.model, rows, name)):
                if keep[i] and not row_values & wanted:
                    keep[i] = False
        return keep


def decay(model: LoadedModel, rows: np.ndarray, reference: float, half_life: float | None) -> np.ndarray:
    """Return ``0.5 ** (|age gap in days| / half_life)`` per row (1 for undated rows or no half-life)."""
    if half_life is None:
        return np.ones(len(rows))
    gap = np.abs(np.asarray(model.published, dtype=np.float64)[np.asarray(rows, dtype=np.int64)] - reference) / DAY
    return np.where(np.isnan(gap), 1.0, np.power(0.5, gap / half_life))


def _choose(model: LoadedModel, rows: np.ndarray, sims: np.ndarray, keep: np.ndarray, needed: int,
            pins: np.ndarray, params: RuleParams, reference: float, grow: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rank the kept candidates (decay, order) and pick ``needed`` with dedupe + MMR."""
    keep = keep & ~np.isin(rows, pins)
    if params.min_score is not None:
        keep &= sims >= params.min_score
    rows, sims = rows[keep], sims[keep]
    relevance = sims * decay(model, rows, reference, params.half_life_days)
    order = np.lexsort((rows, -relevance))
    rows, sims, relevance = rows[order], sims[order], relevance[order]
    size = max(MIN_POOL, 4 * needed) if grow else rows.size
    while True:
        picked, values = select(model, rows[:size], relevance[:size], sims[:size], needed, pins,
                                params.dedupe, params.diversity)
        if picked.size >= needed or size >= rows.size:
            return picked, values
        size *= 4


def rank(model: LoadedModel, query: Query, params: RuleParams, excluded_ids: Sequence[str] = (),
         excluded_tags: Sequence[str] = (), now: float | None = None) -> list[Item]:
    """Return the related list of ``query`` under every rule in ``params`` (docs/rules.md).

    Parameters
    ----------
    model : LoadedModel
        The served version.
    query : Query
        The query article (:func:`stored_query`) or a draft.
    params : RuleParams
        The request's validated rules; ``params.k`` is the list length wanted.
    excluded_ids, excluded_tags : sequence of str
        The service's global exclusions (settings), never recommended.
    now : float, optional
        Current UTC epoch seconds, the reference time of an undated query.

    Returns
    -------
    list of Item
        Editor pins first, then similar items (scores non-increasing), then fallback items.
    """
    reference = query.published if math.isfinite(query.published) else (time.time() if now is None else now)
    filters = Filters(model, query, params, excluded_ids, excluded_tags, reference)
    k = params.k
    pin_rows = np.asarray(list(dict.fromkeys(model.row_of[i] for i in query.related_ids if i in model.row_of)),
                          dtype=np.int64)
    pins = pin_rows[filters.mask(pin_rows)][:k]
    items = [Item(int(r), float(s), "editor") for r, s in zip(pins.tolist(), query.sims(model, pins).tolist())]
    needed = k - len(items)
    if needed > 0:
        picked = np.empty(0, dtype=np.int64)
        if query.row is not None:  # the cheap path: the precomputed list
            rows = np.asarray(model.neighbors_indices[query.row], dtype=np.int64)
            sims = np.asarray(model.neighbors_scores[query.row], dtype=np.float64)
            listed = (rows >= 0) & (sims > MIN_SCORE)
            rows, sims = rows[listed], sims[listed]
            picked, values = _choose(model, rows, sims, filters.mask(rows), needed, pins, params, reference, False)
        if picked.size < needed:  # exhausted (or a draft): scan every stored vector exactly
            scores = query.scores()
            rows = np.flatnonzero(scores > MIN_SCORE)
            sims = np.asarray(scores[rows], dtype=np.float64)
            picked, values = _choose(model, rows, sims, filters.mask(rows), needed, pins, params, reference, True)
        items += [Item(int(r), float(v), "similar") for r, v in zip(picked.tolist(), values.tolist())]
    if len(items) < k and params.fallback != "none":
        items += _fallback(model, query, params, filters, items, k - len(items))
    return items


def _fallback(model: LoadedModel, query: Query, params: RuleParams, filters: Filters, items: list[Item],
              needed: int) -> list[Item]:
    """Newest qualifying articles (sharing a tag with the query for recent_same_tag), skipping near-duplicates."""
    rows = newest_first(model)
    taken = np.asarray([item.row for item in items], dtype=np.int64)
    keep = filters.mask(rows) & ~np.isin(rows, taken)
    if params.fallback == "recent_same_tag":
        query_tags = frozenset(t.casefold() for t in query.tags)
        keep &= np.asarray([bool(tags & query_tags) for tags in tag_set(model, rows)], dtype=bool)
    rows = rows[keep]
    if params.dedupe is None:
        picked = rows[:needed]
    else:
        sims = query.scores()[rows]
        size = max(MIN_POOL, 4 * needed)
        while True:
            picked, _ = select(model, rows[:size], -np.arange(min(size, rows.size), dtype=np.float64), sims[:size],
                               needed, taken, params.dedupe, 0.0)
            if picked.size >= needed or size >= rows.size:
                break
            size *= 4
    scores = query.sims(model, picked)
    return [Item(int(r), float(s), "fallback") for r, s in zip(picked.tolist(), scores.tolist())]
