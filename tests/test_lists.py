"""List selection: the best n by (score descending, row ascending) above MIN_SCORE, with ties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from training.lists import MIN_SCORE, order_keys, select_lists


def reference(cand: np.ndarray, total: np.ndarray, n: int, extra: np.ndarray):
    idx = np.full((len(cand), n), -1, np.int32)
    val = np.zeros((len(cand), n), np.float32)
    ext = np.zeros((len(cand), n), np.float32)
    for r in range(len(cand)):
        entries = sorted((-float(total[r, c]), int(cand[r, c]), float(extra[r, c])) for c in range(cand.shape[1])
                         if cand[r, c] >= 0 and np.isfinite(total[r, c]) and total[r, c] > MIN_SCORE)[:n]
        for i, (neg, row, e) in enumerate(entries):
            idx[r, i], val[r, i], ext[r, i] = row, -neg, e
    return idx, val, ext


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 6), width=st.integers(1, 30), n=st.integers(1, 35), seed=st.integers(0, 2**16))
def test_select_lists_is_the_sorted_prefix(rows, width, n, seed):
    rng = np.random.default_rng(seed)
    levels = np.array([-1.0, 0.0, 5e-7, 1e-6, 0.25, 0.5, 0.5, 0.75, np.inf, -np.inf, np.nan], np.float32)
    total = np.where(rng.random((rows, width)) < 0.5, rng.choice(levels, (rows, width)),
                     rng.random((rows, width))).astype(np.float32)  # many ties and edge values
    cand = np.stack([rng.permutation(200)[:width] for _ in range(rows)])
    cand[rng.random((rows, width)) < 0.2] = -1
    extra = rng.random((rows, width)).astype(np.float32)
    got = select_lists(cand, total.copy(), n, extra=extra)
    for a, b in zip(got, reference(cand, total, n, extra)):
        assert np.array_equal(a, b)
    assert all(np.array_equal(a, b) for a, b in zip(select_lists(cand, total, n), got[:2]))


def test_order_keys_sort_by_score_descending_then_row():
    scores = np.array([0.5, -0.25, 0.5, 3.0, 0.0, -7.0, 1e-30], np.float32)
    rows = np.array([9, 1, 2, 4, 8, 3, 5])
    order = np.argsort(order_keys(scores, rows))
    assert [int(rows[i]) for i in order] == [4, 2, 9, 5, 8, 1, 3]
