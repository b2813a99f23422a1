"""Tests for benchmarks/synthetic.py: seeded, complete records modelled on their templates, readable corpora."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from benchmarks import synthetic
from training.corpus import read_articles

REPO = Path(__file__).resolve().parents[1]
FIELDS = {"id", "title", "body", "tags", "published_at"}
VOCABULARY = {
    "grain": "wheat corn harvest tonnes export crop farmers bushels usda grain",
    "crude": "oil crude barrel opec refinery output prices supply saudi energy",
    "money": "dollar yen currency bank rates interest central markets fed dealers",
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A small Reuters-shaped source (gzip JSON Lines): three topics, a record without topic or date."""
    rng = random.Random(7)
    records = []
    for i in range(30):
        topic = list(VOCABULARY)[i % 3]
        words = VOCABULARY[topic].split()
        records.append({
            "id": str(i + 1), "title": " ".join(rng.choices(words, k=rng.randint(3, 7))).upper(),
            "body": " ".join(rng.choices(words, k=rng.randint(20, 60))),
            "topics": [] if i == 29 else [topic], "tags": [topic, f"place-{i % 4}"],
            "published_at": None if i == 29 else f"1987-03-{1 + i % 28:02d}T10:{i:02d}:00.000",
        })
    path = tmp_path_factory.mktemp("source") / "reuters-like.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    return path, records


def write(source: Path, out: Path, n: int, seed: int) -> list[dict]:
    """Write a synthetic corpus with :func:`synthetic.write_corpus`; return its records."""
    assert synthetic.write_corpus(out, n, seed=seed, data=source) == n
    with gzip.open(out, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_same_seed_gives_identical_output(source, tmp_path):
    write(source[0], tmp_path / "a.jsonl.gz", 25, seed=3)
    write(source[0], tmp_path / "b.jsonl.gz", 25, seed=3)
    # compare the JSON Lines, not the files: the gzip header holds the write time
    first = gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes())
    assert first and first == gzip.decompress((tmp_path / "b.jsonl.gz").read_bytes())


def test_other_seed_gives_other_texts(source, tmp_path):
    a = write(source[0], tmp_path / "a.jsonl.gz", 25, seed=3)
    b = write(source[0], tmp_path / "b.jsonl.gz", 25, seed=4)
    assert [r["body"] for r in a] != [r["body"] for r in b]
    assert [r["title"] for r in a] != [r["title"] for r in b]
    assert {r["id"] for r in a}.isdisjoint(r["id"] for r in b)


def test_records_have_the_fields_and_follow_a_template(source, tmp_path):
    path, records = source
    out = write(path, tmp_path / "syn.jsonl.gz", 40, seed=5)
    assert len(out) == 40
    assert [r["id"] for r in out] == [f"syn-5-{i}" for i in range(40)]
    assert all(set(r) == FIELDS for r in out)
    templates = {(len(r["title"].split()), len(r["body"].split()), tuple(r["tags"]), r["published_at"])
                 for r in records}
    source_words = {w for r in records for w in (r["title"] + " " + r["body"]).split()}
    for r in out:
        # each article copies its template's lengths, tags and date, and draws source words
        assert (len(r["title"].split()), len(r["body"].split()), tuple(r["tags"]), r["published_at"]) in templates
        assert set((r["title"] + " " + r["body"]).split()) <= source_words


def test_output_is_readable_by_training_corpus(source, tmp_path):
    out = tmp_path / "syn.jsonl.gz"
    expected = write(source[0], out, 30, seed=1)
    skipped: list = []
    articles = list(read_articles(out, skip_invalid=True, skipped=skipped))
    assert skipped == []
    assert [(a.id, a.texts, a.tags, a.published_at is None) for a in articles] == [
        (r["id"], {"title": r["title"], "body": r["body"]}, r["tags"], r["published_at"] is None)
        for r in expected]


def test_bad_requests_are_refused(source):
    with pytest.raises(ValueError, match="inside the repository"):
        synthetic.write_corpus(REPO / "benchmarks" / "out" / "syn.jsonl.gz", 5, data=source[0])
    model = synthetic.fit_word_model(source[1])
    with pytest.raises(ValueError, match="n must be >= 1"):
        list(synthetic.generate(model, 0))
    with pytest.raises(ValueError, match="no records"):
        synthetic.fit_word_model([])
