"""The compiled loops of `related update` (training._update_kernels) give training's floats, bit for bit."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_twins import sparse_rows
from training import update_lists
from training.first_pass import latent_dots
from training.kernels import pair_dots

LOOPS = update_lists.LOOPS
needs_loops = pytest.mark.skipif(LOOPS is None, reason="training._update_kernels is not built (no C compiler)")


def test_the_loops_are_built_wherever_a_compiler_is():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: `related update` runs its numpy loops")
    assert LOOPS is not None, "a C compiler is present but training._update_kernels was not built: reinstall"


@needs_loops
@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 20), n=st.integers(1, 1500), dims=st.integers(1, 130), seed=st.integers(0, 2**16))
def test_compiled_latent_dots_equal_the_kernel(rows, n, dims, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, dims)).astype(np.float32)
    q = np.ascontiguousarray(z[rng.integers(0, n, rows)])
    out = np.empty((rows, n), np.float32)
    LOOPS.latent_dots(q, np.ascontiguousarray(z.T), out)
    assert np.array_equal(out, latent_dots(q, z.T))


@needs_loops
@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 300), features=st.integers(1, 400), density=st.floats(0.001, 0.5),
       width=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_compiled_pair_dots_equal_the_kernel(n, features, density, width, seed):
    x = sparse_rows(n, features, density, seed)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n, 25), replace=False))
    cand = rng.integers(-1, n, (len(rows), width))  # -1: no candidate, score 0
    out = np.empty(cand.size, np.float32)
    LOOPS.pair_dots(x.indptr.astype(np.int64), x.indices, x.data, np.repeat(rows, width).astype(np.int64),
                    cand.ravel().astype(np.int64), out)
    assert np.array_equal(out.reshape(cand.shape), pair_dots(x[rows], x, cand))
