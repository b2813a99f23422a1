"""Tests of IdIndex: the compact article id -> row mapping behaves exactly like a dict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.ids import IdIndex


@settings(max_examples=150, deadline=None)
@given(ids=st.lists(st.text(min_size=1, max_size=20).filter(lambda t: not t.endswith("\x00")), unique=True,
                    min_size=1, max_size=60),
       probes=st.lists(st.text(max_size=20), max_size=20))
def test_index_equals_a_dict(ids, probes):
    index = IdIndex(np.array(ids))
    expected = {article_id: row for row, article_id in enumerate(ids)}
    assert len(index) == len(expected) and index.duplicates() == 0
    assert list(index) == ids
    for article_id, row in expected.items():
        assert index[article_id] == row and article_id in index
    for probe in probes:
        assert index.get(probe) == expected.get(probe)
        assert (probe in index) == (probe in expected)


def test_hash_collisions_are_resolved_by_the_ids(monkeypatch):
    """Every id hashed to the same value: lookups still return the right rows."""
    import service.ids

    monkeypatch.setattr(service.ids, "hash", lambda value: 7, raising=False)
    index = IdIndex(np.array(["a", "b", "c"]))
    assert [index[i] for i in "abc"] == [0, 1, 2]
    assert index.get("d") is None


def test_duplicates_and_non_string_keys():
    assert IdIndex(np.array(["a", "b", "a", "a"])).duplicates() == 2
    index = IdIndex(np.array(["1", "2"]))
    with pytest.raises(KeyError):
        index[1]  # noqa: B018 - ids are strings
    assert 1 not in index
