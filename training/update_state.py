"""The update state a version stores: each row's latent candidates and first pass, with their score parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training import model_dir

#: Latent candidates kept per row beyond the rescored ones, so deletions rarely force a row's
#: full recomputation in an update.
RESERVE = 50
#: The update state a version stores (docs/model-format.md), file stems.
STATE = ("update_latent", "update_first_indices", "update_first_scores", "update_first_sparse",
         "update_candidates", "update_candidate_latent", "update_candidate_sparse")


def exhaustive(n_rows: int, dims: int, candidates: int) -> bool:
    """Whether the first pass scores every pair (no latent candidates).

    Parameters
    ----------
    n_rows, dims : int
        Articles and latent dimensions.
    candidates : int
        The ``candidates`` training option (0: exhaustive).

    Returns
    -------
    bool
    """
    return not candidates or dims == 0 or candidates >= n_rows


@dataclass
class FirstPass:
    """First-pass lists of some rows and, in candidate mode, their latent candidate lists.

    ``candidates`` holds each row's best rows by latent score (descending, ties to the lower
    row), -1 padded; every row not listed scores lower (or equal and is a higher row) than
    the last one listed. It has zero columns in exhaustive mode. ``first_sparse`` and
    ``candidate_sparse`` are the sparse parts ``s_i . s_j`` of the listed scores (of the
    first ``candidates`` candidates), the same floats as a recomputation.
    """

    indices: np.ndarray
    scores: np.ndarray
    candidates: np.ndarray
    latent: np.ndarray
    first_sparse: np.ndarray | None = None
    candidate_sparse: np.ndarray | None = None


def state_arrays(first: FirstPass, dense: np.ndarray) -> dict[str, np.ndarray]:
    """The update state files of a version (see docs/model-format.md).

    Parameters
    ----------
    first : FirstPass
        Every row's first pass.
    dense : numpy.ndarray
        Unexpanded latent vectors.

    Returns
    -------
    dict of file stem to array
    """
    n = len(first.indices)
    first_sparse = first.first_sparse if first.first_sparse is not None else np.zeros((n, 0), np.float32)
    cand_sparse = first.candidate_sparse if first.candidate_sparse is not None else np.zeros((n, 0), np.float32)
    return dict(zip(STATE, (dense, first.indices, first.scores, first_sparse,
                            first.candidates, first.latent, cand_sparse)))


def load_state(version: Path, manifest: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """Read a version's update state (memory-mapped), checking every array's rows.

    Parameters
    ----------
    version : Path
        The version directory.
    manifest : dict
        Its manifest.
    n : int
        Its article count.

    Returns
    -------
    dict of file stem to array

    Raises
    ------
    training.model_dir.ModelDirError
        When a state file is missing (the version predates this state) or has the wrong shape.
    """
    missing = [name for name in STATE if f"{name}.npy" not in manifest.get("files", {})]
    if missing:
        raise model_dir.ModelDirError(
            f"{version}: no update state ({missing[0]}.npy; the version predates this `related update`): "
            "publish a version with `related train` first")
    state = {name: model_dir.load_array(version, name) for name in STATE}
    for name, array in state.items():
        if array.ndim != 2 or array.shape[0] != n:
            raise model_dir.ModelDirError(f"{version / (name + '.npy')}: shape {array.shape}, expected ({n}, ...)")
    return state
