"""The numpy twins of the compiled kernels, and the update's compiled loops, give the kernels' floats, bit for bit."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from training import twins
from training.update_lists import LOOPS
from training.first_pass import latent_dots
from training.kernels import pair_dots


def sparse_rows(n: int, features: int, density: float, seed: int) -> sp.csr_matrix:
    x = sp.random(n, features, density=density, format="csr", dtype=np.float32, random_state=seed)
    x.data = np.abs(x.data) + np.float32(1e-3)  # TF-IDF parts are positive
    x.sort_indices()
    return x


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 20), n=st.integers(1, 1500), dims=st.integers(1, 130), seed=st.integers(0, 2**16))
def test_latent_dots_twin_equals_the_kernel(rows, n, dims, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, dims)).astype(np.float32)
    q = z[rng.integers(0, n, rows)]
    assert np.array_equal(twins.latent_dots(q, np.ascontiguousarray(z.T)), latent_dots(q, z.T))
    assert np.array_equal(twins.latent_dots(q, z.T), latent_dots(q, z.T))  # any layout
    if LOOPS is not None:  # the compiled loops of `related update` too
        out = np.empty((rows, n), np.float32)
        LOOPS.latent_dots(np.ascontiguousarray(q), np.ascontiguousarray(z.T), out)
        assert np.array_equal(out, latent_dots(q, z.T))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 300), features=st.integers(1, 400), density=st.floats(0.001, 0.5),
       width=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_pair_dots_twin_equals_the_kernel_either_way_round(n, features, density, width, seed):
    x = sparse_rows(n, features, density, seed)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n, 25), replace=False))
    cand = rng.integers(-1, n, (len(rows), width))  # -1: no candidate, score 0
    expected = pair_dots(x[rows], x, cand)
    a = np.repeat(rows, width)
    got = twins.pair_dots(x.indptr.astype(np.int64), x.indices, x.data, a, cand.ravel(), features)
    assert np.array_equal(got.reshape(expected.shape), expected)
    ok = cand.ravel() >= 0
    swapped = twins.pair_dots(x.indptr.astype(np.int64), x.indices, x.data, cand.ravel()[ok], a[ok], features)
    assert np.array_equal(swapped, expected.ravel()[ok])
    # pairs with few shared rows: the shared columns searched instead of scattered
    searched = twins._searched_pair_dots(x.indptr.astype(np.int64), x.indices, x.data, a[ok], cand.ravel()[ok],
                                         features)
    assert np.array_equal(searched, expected.ravel()[ok])
    if LOOPS is not None:  # the compiled loops of `related update` too
        out = np.empty(cand.size, np.float32)
        LOOPS.pair_dots(x.indptr.astype(np.int64), x.indices, x.data, a.astype(np.int64),
                        cand.ravel().astype(np.int64), out)
        assert np.array_equal(out.reshape(expected.shape), expected)


def test_pair_dots_twin_splits_large_inputs_into_blocks(monkeypatch):
    x = sparse_rows(400, 3000, 0.05, 1)
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 400, 5000), rng.integers(0, 400, 5000)
    whole = twins.pair_dots(x.indptr.astype(np.int64), x.indices, x.data, a, b, 3000)
    monkeypatch.setattr(twins, "_DENSE", 3000 * 7)  # seven dense rows per block
    blocks = twins.pair_dots(x.indptr.astype(np.int64), x.indices, x.data, a, b, 3000)
    assert np.array_equal(whole, blocks)
    expected = np.asarray([x[i].multiply(x[j]).sum() for i, j in zip(a[:50], b[:50])])
    assert np.allclose(whole[:50], expected, rtol=1e-5, atol=1e-7)
