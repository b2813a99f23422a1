"""Exact and near-duplicate groups (wire copies, re-filed updates) found in the related lists."""

from __future__ import annotations

import numpy as np

#: Similarity at or above which two articles count as near-duplicates.
DEFAULT_THRESHOLD = 0.9
#: Similarity at or above which two articles count as exact duplicates (float32 rounding).
EXACT_THRESHOLD = 0.9999


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of every node of the undirected graph with edges ``a[e] - b[e]``.

    Labels spread as minima along the edges, with pointer jumping, until nothing changes.
    """
    labels = np.arange(n)
    while True:
        low = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def duplicate_groups(
    indices: np.ndarray, scores: np.ndarray, ids: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> list[list[str]]:
    """Groups of articles linked by similarity >= ``threshold`` (connected components).

    Parameters
    ----------
    indices, scores : numpy.ndarray, shape (n, N)
        The neighbour lists (-1 padded).
    ids : numpy.ndarray, shape (n,)
        Article id of each row.
    threshold : float
        Similarity at or above which two articles are linked.

    Returns
    -------
    list of list of str
        Each group's ids sorted, groups of two or more, largest first then by first id.
    """
    n = len(ids)
    rows, cols = np.nonzero((scores >= threshold) & (indices >= 0))
    if rows.size == 0:
        return []
    labels = _components(n, rows, indices[rows, cols].astype(np.int64))
    members = np.unique(np.concatenate([rows, indices[rows, cols]]))
    groups: dict[int, list[str]] = {}
    for row in members:
        groups.setdefault(int(labels[row]), []).append(str(ids[row]))
    out = [sorted(g) for g in groups.values() if len(g) > 1]
    return sorted(out, key=lambda g: (-len(g), g[0]))


def duplicate_report(
    indices: np.ndarray, scores: np.ndarray, ids: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> dict:
    """The manifest's ``duplicates`` entry: exact and near-duplicate groups.

    Parameters
    ----------
    indices, scores, ids : as for :func:`duplicate_groups`
    threshold : float
        Near-duplicate threshold.

    Returns
    -------
    dict
        ``{"threshold", "exact_threshold", "exact_groups", "groups"}``.
    """
    return {
        "threshold": threshold,
        "exact_threshold": EXACT_THRESHOLD,
        "exact_groups": duplicate_groups(indices, scores, ids, EXACT_THRESHOLD),
        "groups": duplicate_groups(indices, scores, ids, threshold),
    }
