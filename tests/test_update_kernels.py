"""The compiled loops of `related update` (training._update_kernels) are built wherever a compiler is.

Their floats are checked against training's kernels in tests/test_twins.py, and every
update test runs with and without them (tests/test_update.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training import update_lists


def test_the_loops_are_built_wherever_a_compiler_is():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: `related update` runs its numpy loops")
    assert update_lists.LOOPS is not None, "a C compiler is present but training._update_kernels was not built: reinstall"


def test_without_a_compiler_the_install_goes_on_without_the_loops(tmp_path):
    pytest.importorskip("Cython", reason="Cython is a build requirement (pyproject.toml)")
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "training").mkdir()
    shutil.copy(repo / "setup.py", tmp_path)
    shutil.copy(repo / "training" / "_update_kernels.pyx", tmp_path / "training")
    env = {**os.environ, "CC": "false", "LDSHARED": "false"}  # a compiler that always fails
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert 'building extension "training._update_kernels" failed' in build.stderr
    assert not list((tmp_path / "training").glob("_update_kernels*.so"))
