"""Offline evaluation of related lists against hidden labels (P@k, MAP@k, nDCG@k, coverage)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["evaluate", "load_labels", "read_export"]

# Upper bound on the number of cells of one (label sets x label sets) block in the IDCG pass.
_BLOCK_CELLS = 4_000_000


def evaluate(
    related: Mapping[str, Sequence[str]],
    labels: Mapping[str, Collection[str]],
    queries: Iterable[str] | None = None,
    k: int = 10,
) -> dict:
    """Score ranked related lists with the protocol of EVALUATION.md.

    Parameters
    ----------
    related : Mapping[str, Sequence[str]]
        Pool id -> its ranked related ids, best first. Lists longer than ``k`` are cut
        to ``k``; shorter lists count their missing slots as not relevant; a pool id
        absent from ``related`` has an empty list.
    labels : Mapping[str, Collection[str]]
        Pool id -> its label set. The pool is exactly the keys of ``labels``.
    queries : Iterable[str] or None
        The ids to score; all pool ids when None.
    k : int
        Cut-off rank.

    Returns
    -------
    dict
        ``precision_at_k``, ``map_at_k``, ``ndcg_at_k`` (means over the queries),
        ``coverage`` (share of the pool present in at least one top-k list of the whole
        ``related`` mapping), ``k`` and ``queries`` (the number of queries). A query with
        no relevant article in the pool (R_q = 0) scores 0 for AP and nDCG.

    Raises
    ------
    ValueError
        On a bad ``k``, an empty pool or query set, a query or listed id not in the pool,
        a list holding its own query or the same id twice within the top k, or a label
        set / list given as a plain string.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    pool_ids = list(labels)
    if not pool_ids:
        raise ValueError("labels is empty: the pool has no articles")
    row_of = {pid: i for i, pid in enumerate(pool_ids)}
    set_of_row, set_matrix, set_counts = _label_sets(pool_ids, labels)

    rows = _top_rows(related, row_of, k)
    query_rows = _query_rows(queries, row_of)
    query_lists = np.stack([rows.get(int(q), _empty_row(k)) for q in query_rows])

    # Gains of the listed articles: Jaccard of label sets (0 for empty slots).
    q_sets = np.repeat(set_of_row[query_rows], k)
    filled = query_lists.ravel() >= 0
    gains = np.zeros(query_lists.size)
    if filled.any():
        d_sets = set_of_row[query_lists.ravel()[filled]]
        gains[filled] = _pair_jaccard(set_matrix, q_sets[filled], d_sets)
    gains = gains.reshape(query_lists.shape)
    relevant = gains > 0

    n_relevant, idcg = _ideal(set_matrix, set_counts, np.unique(set_of_row[query_rows]), k)
    q_set_idx = set_of_row[query_rows]
    r_q = n_relevant[q_set_idx]
    ideal = idcg[q_set_idx]

    ranks = np.arange(1, k + 1)
    precision = relevant.sum(axis=1) / k
    hits = np.cumsum(relevant, axis=1)
    ap_num = (relevant * hits / ranks).sum(axis=1)
    ap_den = np.minimum(r_q, k)
    ap = np.divide(ap_num, ap_den, out=np.zeros_like(ap_num), where=ap_den > 0)
    dcg = (gains / np.log2(ranks + 1)).sum(axis=1)
    ndcg = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)

    shown = np.concatenate([r[r >= 0] for r in rows.values()]) if rows else np.empty(0, int)
    coverage = np.unique(shown).size / len(pool_ids)
    return {
        "precision_at_k": float(precision.mean()),
        "map_at_k": float(ap.mean()),
        "ndcg_at_k": float(ndcg.mean()),
        "coverage": float(coverage),
        "k": k,
        "queries": int(query_rows.size),
    }


def _empty_row(k: int) -> np.ndarray:
    """An empty list of k slots (-1 = no article)."""
    return np.full(k, -1, dtype=np.int64)


def _label_sets(
    pool_ids: list[str], labels: Mapping[str, Collection[str]]
) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray]:
    """Group the pool by distinct label set: row -> set index, set x label matrix, set sizes."""
    set_index: dict[frozenset, int] = {}
    set_of_row = np.empty(len(pool_ids), dtype=np.int64)
    for i, pid in enumerate(pool_ids):
        value = labels[pid]
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValueError(f"labels[{pid!r}] must be a collection of labels, got {value!r}")
        set_of_row[i] = set_index.setdefault(frozenset(value), len(set_index))
    vocab: dict = {}
    indptr, indices = [0], []
    for label_set in set_index:
        indices.extend(vocab.setdefault(lab, len(vocab)) for lab in label_set)
        indptr.append(len(indices))
    matrix = sp.csr_matrix(
        (np.ones(len(indices)), np.array(indices, dtype=np.int64), np.array(indptr)),
        shape=(len(set_index), max(len(vocab), 1)),
    )
    counts = np.bincount(set_of_row, minlength=len(set_index))
    return set_of_row, matrix, counts


def _top_rows(
    related: Mapping[str, Sequence[str]], row_of: Mapping[str, int], k: int
) -> dict[int, np.ndarray]:
    """Translate every related list to pool rows, cut to k and padded with -1."""
    rows: dict[int, np.ndarray] = {}
    for qid, listed in related.items():
        if qid not in row_of:
            raise ValueError(f"related has a list for {qid!r}, which is not in the pool")
        if isinstance(listed, (str, bytes)) or not isinstance(listed, Iterable):
            raise ValueError(f"related[{qid!r}] must be a sequence of ids, got {listed!r}")
        top = list(listed)[:k]
        out = _empty_row(k)
        for rank, did in enumerate(top):
            row = row_of.get(did)
            if row is None:
                raise ValueError(f"related[{qid!r}][{rank}] = {did!r} is not in the pool")
            out[rank] = row
        if (did_dup := _first_duplicate(top)) is not None:
            raise ValueError(f"related[{qid!r}] lists {did_dup!r} more than once in its top {k}")
        if qid in top:
            raise ValueError(f"related[{qid!r}] lists the query itself")
        rows[row_of[qid]] = out
    return rows


def _first_duplicate(ids: list[str]) -> str | None:
    """The first id seen twice in ids, or None."""
    seen: set = set()
    for did in ids:
        if did in seen:
            return did
        seen.add(did)
    return None


def _query_rows(queries: Iterable[str] | None, row_of: Mapping[str, int]) -> np.ndarray:
    """Pool rows of the queries (all rows when None)."""
    if queries is None:
        return np.arange(len(row_of))
    if isinstance(queries, (str, bytes)):
        raise ValueError(f"queries must be an iterable of ids, not the string {queries!r}")
    out = []
    for qid in queries:
        row = row_of.get(qid)
        if row is None:
            raise ValueError(f"query {qid!r} is not in the pool (the keys of labels)")
        out.append(row)
    if not out:
        raise ValueError("queries is empty: nothing to evaluate")
    return np.asarray(out, dtype=np.int64)


def _pair_jaccard(matrix: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Jaccard of label sets a[i] and b[i] for every i (0 when both are empty)."""
    inter = np.asarray(matrix[a].multiply(matrix[b]).sum(axis=1)).ravel()
    sizes = np.diff(matrix.indptr)
    union = sizes[a] + sizes[b] - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=float), where=union > 0)


def _ideal(
    matrix: sp.csr_matrix, counts: np.ndarray, wanted: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """R_q and IDCG@k for an article of each wanted label set, the article itself excluded.

    Returns arrays indexed by label-set index (entries outside ``wanted`` are 0).
    """
    n_sets = matrix.shape[0]
    n_relevant = np.zeros(n_sets, dtype=np.int64)
    idcg = np.zeros(n_sets)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    sizes = np.diff(matrix.indptr).astype(float)
    block = max(1, _BLOCK_CELLS // max(n_sets, k))
    for chunk in _chunks(wanted, block):
        inter = (matrix[chunk] @ matrix.T).toarray()
        union = sizes[chunk, None] + sizes[None, :] - inter
        jac = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        avail = np.broadcast_to(counts, inter.shape).copy()
        avail[np.arange(chunk.size), chunk] -= 1  # the query itself is not a candidate
        n_relevant[chunk] = ((jac > 0) * avail).sum(axis=1)
        idcg[chunk] = _top_k_dcg(np.where(avail > 0, jac, 0.0), avail, k, discount)
    return n_relevant, idcg


def _top_k_dcg(gain: np.ndarray, count: np.ndarray, k: int, discount: np.ndarray) -> np.ndarray:
    """Per row: DCG of the k largest gains when gain[r, j] is available count[r, j] times."""
    kk = min(k, gain.shape[1])
    top = np.argpartition(-gain, kk - 1, axis=1)[:, :kk]
    g = np.take_along_axis(gain, top, axis=1)
    c = np.take_along_axis(count, top, axis=1)
    order = np.argsort(-g, axis=1, kind="stable")
    g = np.take_along_axis(g, order, axis=1)
    cum = np.cumsum(np.take_along_axis(c, order, axis=1), axis=1)
    # Slot p (0-based) holds the gain of the first sorted entry whose cumulative count > p.
    slot = (cum[:, :, None] <= np.arange(k)[None, None, :]).sum(axis=1)
    padded = np.concatenate([g, np.zeros((g.shape[0], 1))], axis=1)
    return (padded[np.arange(g.shape[0])[:, None], np.minimum(slot, kk)] * discount).sum(axis=1)


def _chunks(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of values, size long."""
    for start in range(0, values.size, size):
        yield values[start : start + size]


def _open_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, stripped line) of a UTF-8 text file, gzip-compressed or not."""
    path = Path(path)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.strip()
            if line:
                yield number, line


def _json_objects(path: str | Path) -> Iterator[tuple[str, dict]]:
    """Yield ("path:line", object) for every non-blank line of a JSONL(.gz) file."""
    for number, line in _open_lines(path):
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        yield where, obj


def _get_id(obj: dict, id_field: str, where: str, seen: Mapping[str, object]) -> str:
    """The record's id, checked to be a new non-empty string."""
    value = obj.get(id_field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: field {id_field!r} must be a non-empty string, got {value!r}")
    if value in seen:
        raise ValueError(f"{where}: duplicate id {value!r}")
    return value


def load_labels(
    path: str | Path, label_field: str, id_field: str = "id"
) -> dict[str, frozenset[str]]:
    """Read id -> label set from a JSONL or JSONL.gz file.

    Parameters
    ----------
    path : str or Path
        One JSON object per line.
    label_field : str
        Field holding a list of string labels (e.g. ``"topics"``).
    id_field : str
        Field holding the article id.

    Returns
    -------
    dict[str, frozenset[str]]
        Labels per id, in file order.
    """
    out: dict[str, frozenset[str]] = {}
    for where, obj in _json_objects(path):
        rid = _get_id(obj, id_field, where, out)
        value = obj.get(label_field)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(
                f"{where}: field {label_field!r} of {rid!r} must be a list of strings, got {value!r}"
            )
        out[rid] = frozenset(value)
    return out


def read_export(path: str | Path) -> dict[str, list[str]]:
    """Read a ``related export`` file into id -> ranked related ids.

    Parameters
    ----------
    path : str or Path
        JSONL(.gz), one ``{"id": ..., "related": [{"id": ..., "score": ...}, ...]}`` a line.

    Returns
    -------
    dict[str, list[str]]
        The related ids of every article, best first, in file order.
    """
    out: dict[str, list[str]] = {}
    for where, obj in _json_objects(path):
        rid = _get_id(obj, "id", where, out)
        items = obj.get("related")
        if not isinstance(items, list):
            raise ValueError(f"{where}: field 'related' of {rid!r} must be a list, got {items!r}")
        ids = []
        for pos, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise ValueError(
                    f"{where}: related[{pos}] of {rid!r} must be an object with a string 'id',"
                    f" got {item!r}"
                )
            ids.append(item["id"])
        out[rid] = ids
    return out
