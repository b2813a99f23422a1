"""The compiled loops of `related update` (training._update_kernels) are built wherever a compiler is.

Their floats are checked against training's kernels in tests/test_twins.py, and every
update test runs with and without them (tests/test_update.py).
"""

from __future__ import annotations

import shutil

import pytest

from training import update_lists


def test_the_loops_are_built_wherever_a_compiler_is():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: `related update` runs its numpy loops")
    assert update_lists.LOOPS is not None, "a C compiler is present but training._update_kernels was not built: reinstall"
