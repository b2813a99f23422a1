"""Tests of the evaluation protocol (training/evaluate.py) and the Reuters pool and scoring tools."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from training.evaluate import evaluate, load_labels, read_export

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REUTERS = SHARED / "data" / "reuters21578.jsonl.gz"
needs_reuters = pytest.mark.skipif(
    not REUTERS.is_file(),
    reason=f"Reuters-21578 not found at {REUTERS} (../shared is research data kept outside the repo)",
)


def _load_script(name: str):
    """Import benchmarks/<name>.py (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Hand-worked pool, k = 3. Jaccard gains between label sets:
#   a{x}  b{x}  c{x,y}  d{y}  e{z}  f{x,y}
#   J(x, x) = 1, J(x, xy) = 1/2, J(xy, y) = 1/2, J(xy, xy) = 1, J(x, y) = 0, J(z, *) = 0.
LABELS = {
    "a": {"x"}, "b": {"x"}, "c": {"x", "y"}, "d": {"y"}, "e": {"z"}, "f": {"x", "y"},
}
L3 = math.log2(3)  # discount of rank 2 is 1/log2(3); rank 1 -> 1/log2(2) = 1; rank 3 -> 1/log2(4) = 1/2
# Query a{x}: relevant others b, c, f -> R_a = 3. Best gains 1 (b), 1/2 (c), 1/2 (f):
#   IDCG_a = 1 + 0.5/log2(3) + 0.5/2.  List [d, c, b] -> relevance 0, 1, 1.
#   P = 2/3; AP = (P@2 + P@3) / min(3, 3) = (1/2 + 2/3) / 3 = 7/18;
#   DCG = 0 + 0.5/log2(3) + 1/2.
# Query c{x,y} (multi-label, Jaccard gains): relevant a, b, d (1/2 each), f (1) -> R_c = 4.
#   IDCG_c = 1 + 0.5/log2(3) + 0.5/2. Short list [f, e]: relevance 1, 0, (missing slot) 0.
#   P = 1/3; AP = P@1 / min(4, 3) = 1/3; DCG = 1.
# Query d{y}: relevant c, f (1/2 each) -> R_d = 2 < k.
#   IDCG_d = 0.5 + 0.5/log2(3) (only two gains above 0). List [c, a, f] -> relevance 1, 0, 1.
#   P = 2/3; AP = (P@1 + P@3) / min(2, 3) = (1 + 2/3) / 2 = 5/6; DCG = 0.5 + 0 + 0.5/2.
IDCG_A = IDCG_C = 1 + 0.5 / L3 + 0.25
IDCG_D = 0.5 + 0.5 / L3
EXPECTED = {
    "a": (2 / 3, 7 / 18, (0.5 / L3 + 0.5) / IDCG_A),
    "c": (1 / 3, 1 / 3, 1 / IDCG_C),
    "d": (2 / 3, 5 / 6, 0.75 / IDCG_D),
}
RELATED = {"a": ["d", "c", "b"], "c": ["f", "e"], "d": ["c", "a", "f"], "b": [], "e": ["a"]}


def _mean(column: int) -> float:
    return sum(v[column] for v in EXPECTED.values()) / len(EXPECTED)


def test_hand_computed_metrics():
    result = evaluate(RELATED, LABELS, queries=["a", "c", "d"], k=3)
    assert result["precision_at_k"] == pytest.approx(5 / 9)  # (2/3 + 1/3 + 2/3) / 3
    assert result["map_at_k"] == pytest.approx(14 / 27)  # (7/18 + 6/18 + 15/18) / 3
    assert result["precision_at_k"] == pytest.approx(_mean(0))
    assert result["ndcg_at_k"] == pytest.approx(_mean(2))
    assert result["ndcg_at_k"] == pytest.approx(0.69313, abs=1e-5)  # (0.52091 + 0.63879 + 0.91972) / 3
    assert result["k"] == 3 and result["queries"] == 3


@pytest.mark.parametrize("query", ["a", "c", "d"])
def test_single_query_figures(query):
    p, ap, ndcg = EXPECTED[query]
    result = evaluate(RELATED, LABELS, queries=[query], k=3)
    assert (result["precision_at_k"], result["map_at_k"], result["ndcg_at_k"]) == pytest.approx((p, ap, ndcg))


def test_lists_longer_than_k_are_cut():
    longer = {**RELATED, "c": ["f", "e", "a", "b", "d"]}  # a, b, d (all relevant to c) come late
    cut = evaluate(longer, LABELS, queries=["c"], k=2)
    assert cut["precision_at_k"] == pytest.approx(1 / 2)  # [f, e]: one relevant of 2 slots
    assert cut["map_at_k"] == pytest.approx(1 / 2)  # P@1 / min(R_c = 4, 2)
    full = evaluate(longer, LABELS, queries=["c"], k=5)
    assert full["precision_at_k"] == pytest.approx(4 / 5)  # f, a, b, d relevant; e not


def test_query_without_relevant_articles_scores_zero():
    result = evaluate(RELATED, LABELS, queries=["e"], k=3)  # e{z}: R_e = 0
    assert result == {"precision_at_k": 0.0, "map_at_k": 0.0, "ndcg_at_k": 0.0,
                      "coverage": 1.0, "k": 3, "queries": 1}


def test_perfect_lists_score_one():
    ideal = {"a": ["b", "c", "f"], "c": ["f", "a", "d"], "d": ["c", "f"]}
    result = evaluate(ideal, LABELS, queries=["a", "c", "d"], k=3)
    assert result["map_at_k"] == pytest.approx(1.0)
    assert result["ndcg_at_k"] == pytest.approx(1.0)
    assert result["precision_at_k"] == pytest.approx((1 + 1 + 2 / 3) / 3)  # d has only 2 relevant


def test_default_queries_are_the_whole_pool():
    result = evaluate(RELATED, LABELS, k=3)
    assert result["queries"] == 6
    # a, c, d as above; b: empty list; e: [a] irrelevant; f: missing from related -> empty.
    assert result["precision_at_k"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 6)


def test_coverage_counts_every_list_cut_to_k():
    lists = {"a": ["b", "c", "d", "e"], "b": ["a"]}
    assert evaluate(lists, LABELS, k=3)["coverage"] == pytest.approx(4 / 6)  # a, b, c, d
    assert evaluate(lists, LABELS, k=4)["coverage"] == pytest.approx(5 / 6)  # + e
    # Coverage is over the lists of the whole pool, not only the queries' lists.
    assert evaluate(lists, LABELS, queries=["b"], k=4)["coverage"] == pytest.approx(5 / 6)
    assert evaluate({}, LABELS, k=3)["coverage"] == 0.0


@pytest.mark.parametrize(
    ("related", "queries", "k", "message"),
    [
        (RELATED, ["zz"], 3, "query 'zz' is not in the pool"),
        ({"a": ["b", "zz"]}, None, 3, r"related\['a'\]\[1\] = 'zz' is not in the pool"),
        ({"zz": ["a"]}, None, 3, "list for 'zz', which is not in the pool"),
        ({"a": ["b", "a"]}, None, 3, "lists the query itself"),
        ({"a": ["b", "c", "b"]}, None, 3, "'b' more than once"),
        ({"a": "bcd"}, None, 3, r"related\['a'\] must be a sequence"),
        (RELATED, [], 3, "queries is empty"),
        (RELATED, "a", 3, "not the string"),
        (RELATED, None, 0, "k must be a positive integer"),
    ],
)
def test_bad_input_is_named(related, queries, k, message):
    with pytest.raises(ValueError, match=message):
        evaluate(related, LABELS, queries, k)


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match=r"labels\['a'\] must be a collection"):
        evaluate({}, {"a": "x"})
    with pytest.raises(ValueError, match="labels is empty"):
        evaluate({}, {})


def test_duplicates_beyond_k_are_ignored():
    assert evaluate({"a": ["b", "c", "b"]}, LABELS, ["a"], k=2)["precision_at_k"] == 1.0


def _write(path: Path, rows: list, gz: bool) -> Path:
    text = "".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_load_labels_and_read_export(tmp_path, gz):
    labels = _write(tmp_path / "l.jsonl", [{"id": "a", "topics": ["x"]}, "\n",
                                          {"id": "b", "topics": ["x", "y"]}], gz)
    assert load_labels(labels, "topics") == {"a": frozenset({"x"}), "b": frozenset({"x", "y"})}
    export = _write(tmp_path / "e.jsonl", [{"id": "a", "related": [{"id": "b", "score": 0.8}]},
                                           {"id": "b", "related": []}], gz)
    assert read_export(export) == {"a": ["b"], "b": []}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a", "topics": ["x"]}, "{oops\n"], r"l\.jsonl:2: invalid JSON"),
        ([{"id": "a", "topics": "x"}], "field 'topics' of 'a' must be a list of strings"),
        ([{"topics": ["x"]}], "field 'id' must be a non-empty string"),
        ([{"id": "a", "topics": []}, {"id": "a", "topics": []}], "l.jsonl:2: duplicate id 'a'"),
        (["[1, 2]\n"], "expected a JSON object"),
    ],
)
def test_load_labels_errors(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        load_labels(_write(tmp_path / "l.jsonl", rows, False), "topics")


def test_read_export_errors(tmp_path):
    bad_item = _write(tmp_path / "e.jsonl", [{"id": "a", "related": ["b"]}], False)
    with pytest.raises(ValueError, match=r"related\[0\] of 'a' must be an object"):
        read_export(bad_item)
    no_list = _write(tmp_path / "f.jsonl", [{"id": "a"}], False)
    with pytest.raises(ValueError, match="field 'related' of 'a' must be a list"):
        read_export(no_list)


def test_score_export_cli(tmp_path):
    score_export = _load_script("score_export")
    export = _write(tmp_path / "e.jsonl.gz", [
        {"id": q, "related": [{"id": d, "score": 1.0 - i / 10} for i, d in enumerate(ids)]}
        for q, ids in RELATED.items()], True)
    labels = _write(tmp_path / "l.jsonl", [{"id": i, "topics": sorted(s)} for i, s in LABELS.items()], False)
    queries = tmp_path / "q.txt"
    queries.write_text("a\nc\n\nd\n", encoding="utf-8")
    out = tmp_path / "r.json"
    args = ["--export", str(export), "--labels", str(labels), "--queries", str(queries),
            "-k", "3", "--json", str(out)]
    run = CliRunner().invoke(score_export.main, args)
    assert run.exit_code == 0, run.output
    assert f"map@3        {14 / 27:.4f}" in run.output
    saved = json.loads(out.read_text())
    assert saved["precision_at_k"] == pytest.approx(5 / 9) and saved["queries"] == 3
    queries.write_text("a\nzz\n", encoding="utf-8")
    run = CliRunner().invoke(score_export.main, args)
    assert run.exit_code != 0 and "query 'zz' is not in the pool" in run.output


@pytest.fixture(scope="module")
def reuters():
    module = _load_script("reuters")
    pool = module.pool(module.load_records(REUTERS))
    return module, pool


@needs_reuters
@pytest.mark.shared
def test_reuters_split_counts(reuters):
    module, pool = reuters
    tests = module.query_ids(pool)
    val = module.val_pool(pool)
    val_queries = module.val_query_ids(val)
    assert (len(pool), len(tests), len(val), len(val_queries)) == (10_794, 3_019, 7_775, 2_000)
    assert len(set(val_queries)) == 2_000 and set(val_queries) <= {r["id"] for r in val}
    assert not set(val_queries) & set(tests)
    assert module.val_query_ids(val) == val_queries  # seeded
    stripped = module.strip(pool[0])
    assert set(stripped) == {"id", "title", "body", "tags", "published_at"}


@needs_reuters
@pytest.mark.shared
def test_reuters_cli_writes_files_and_refuses_repo(tmp_path):
    module = _load_script("reuters")
    run = CliRunner().invoke(module.cli, ["pool", "--out", str(tmp_path)])
    assert run.exit_code == 0, run.output
    labels = load_labels(tmp_path / "reuters-labels.jsonl.gz", "topics")
    assert len(labels) == 10_794 and all(labels.values())
    with gzip.open(tmp_path / "reuters-val-pool.jsonl.gz", "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert "topics" not in first and "modapte" not in first
    assert len((tmp_path / "reuters-test-queries.txt").read_text().split()) == 3_019
    assert len(load_labels(tmp_path / "reuters-val-labels.jsonl.gz", "topics")) == 7_775
    refused = CliRunner().invoke(module.cli, ["pool", "--out", str(REPO / "benchmarks" / "out")])
    assert refused.exit_code != 0 and "inside the repository" in refused.output


def _reuters_labels(pool: list[dict]) -> dict[str, frozenset[str]]:
    return {r["id"]: frozenset(r["topics"]) for r in pool}


@needs_reuters
@pytest.mark.shared
def test_reuters_random_baseline(reuters):
    module, pool = reuters
    labels = _reuters_labels(pool)
    ids = list(labels)
    rng = np.random.default_rng(0)
    related = {}
    for i, qid in enumerate(ids):
        picks = rng.choice(len(ids), size=11, replace=False)
        related[qid] = [ids[j] for j in picks if j != i][:10]
    result = evaluate(related, labels, module.query_ids(pool))
    # EVALUATION.md random row: P@10 0.201, MAP@10 0.102, nDCG@10 0.192, coverage 1.000.
    assert result["precision_at_k"] == pytest.approx(0.201, abs=0.015)
    assert result["map_at_k"] == pytest.approx(0.102, abs=0.015)
    assert result["ndcg_at_k"] == pytest.approx(0.192, abs=0.015)
    assert result["coverage"] == pytest.approx(1.0, abs=0.001)


@needs_reuters
@pytest.mark.shared
def test_reuters_topic_oracle(reuters):
    module, pool = reuters
    labels = _reuters_labels(pool)
    members: dict[frozenset[str], list[str]] = {}
    for rid, topics in labels.items():
        members.setdefault(topics, []).append(rid)
    queries = module.query_ids(pool)
    related = {}
    for q in queries:
        mine = labels[q]
        # Best label sets first (Jaccard with q's topics), then their articles, q excluded.
        ranked = sorted(members, key=lambda s: -len(mine & s) / len(mine | s))
        best = (d for s in ranked if mine & s for d in members[s] if d != q)
        related[q] = [d for _, d in zip(range(10), best)]
    result = evaluate(related, labels, queries)
    assert result["map_at_k"] == pytest.approx(1.0)
    assert result["ndcg_at_k"] == pytest.approx(1.0)
    assert result["precision_at_k"] == pytest.approx(0.998, abs=0.0005)
