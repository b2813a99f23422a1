"""Read a delta corpus (added, edited, deleted articles) against a model's rows."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from training.corpus import Article, CorpusError, FieldMap, read_articles


@dataclass
class Delta:
    """A delta file resolved against a model's rows (row order: docs/update.md)."""

    source: np.ndarray
    changed: list[Article]
    changed_rows: np.ndarray
    edited_from: np.ndarray
    added: int
    edited: int
    deleted: int


def read_delta(path: str | os.PathLike, fields: FieldMap, ids: np.ndarray) -> Delta:
    """Read a delta file and lay out the updated rows.

    The updated rows are the old ones in order with edits in place and deletions removed,
    then the added records in file order.

    Parameters
    ----------
    path : path-like
        The delta (a corpus file; ``{"id": ..., "deleted": true}`` removes an article).
    fields : FieldMap
        The model's corpus schema.
    ids : numpy.ndarray of str
        The model's article ids, in row order.

    Returns
    -------
    Delta

    Raises
    ------
    CorpusError
        A bad record, a deletion of an unknown id, an empty delta or one deleting everything.
    """
    row_of = {a: i for i, a in enumerate(np.asarray(ids, dtype=str).tolist())}
    edits: dict[int, Article] = {}
    added: list[Article] = []
    deleted: set[int] = set()
    for article in read_articles(path, fields, allow_deletions=True):
        row = row_of.get(article.id)
        if article.deleted:
            if row is None:
                raise CorpusError(path, article.line, fields.id_field,
                                  f"deletes {article.id!r}, which is not in the model")
            deleted.add(row)
        elif row is None:
            added.append(article)
        else:
            edits[row] = article
    if not (edits or added or deleted):
        raise CorpusError(path, None, None, "no records: nothing to update")
    source: list[int] = []
    changed: list[Article] = []
    changed_rows: list[int] = []
    edited_from: list[int] = []
    for old in range(len(ids)):
        if old in deleted:
            continue
        if old in edits:
            changed_rows.append(len(source))
            changed.append(edits[old])
            edited_from.append(old)
        source.append(-1 if old in edits else old)
    for article in added:
        changed_rows.append(len(source))
        changed.append(article)
        edited_from.append(-1)
        source.append(-1)
    if not source:
        raise CorpusError(path, None, None, "the update would delete every article")
    return Delta(np.asarray(source, np.int64), changed, np.asarray(changed_rows, np.int64),
                 np.asarray(edited_from, np.int64), len(added), len(edits), len(deleted))
