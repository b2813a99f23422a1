"""The `related` command line (training.cli): train, export, query, evaluate, via CliRunner."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tests.fixtures.planted import planted_corpus, write_jsonl
from training import model_dir
from training.cli import main

PLANTED = planted_corpus()
IDS = PLANTED.ids()
FAST = ["--jobs", "1", "--param", "n_components=3"]
SUMMARY = re.compile(r"^articles: (\d+)  vocabulary: (\d+)  latent dims: (\d+)  skipped: (\d+)  "
                     r"time: \d+\.\d s$")


def run(*args, env=None):
    """Invoke `related` in-process; return the click Result."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture
def corpus(tmp_path):
    return write_jsonl(tmp_path / "planted.jsonl", PLANTED.records)


@pytest.fixture
def models(tmp_path, corpus):
    """A store with one version trained on the planted corpus (neighbours: 6)."""
    store = tmp_path / "models"
    result = run("train", "--corpus", corpus, "--models-dir", store, "--neighbors", 6, *FAST)
    assert result.exit_code == 0, result.output
    return store


def export(store, *args):
    result = run("export", "--models-dir", store, *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_train_prints_the_version_and_a_summary(tmp_path, corpus):
    store = tmp_path / "models"
    result = run("train", "--corpus", corpus, "--models-dir", store, *FAST)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    manifest_dups = model_dir.read_manifest(store / lines[0])["duplicates"]
    assert lines[2] == (
        f"duplicates: {len(manifest_dups['exact_groups'])} exact groups, "
        f"{len(manifest_dups['groups'])} groups at similarity >= 0.9 (listed in the manifest)"
    )
    assert manifest_dups["exact_groups"], "the planted corpus has a duplicate pair"
    assert re.match(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$", lines[0])
    assert lines[0] == model_dir.current_version(store)
    articles, vocabulary, dims, skipped = map(int, SUMMARY.match(lines[1]).groups())
    manifest = model_dir.verify(store / lines[0])
    assert (articles, dims, skipped) == (len(IDS), 3, 0)
    assert vocabulary == manifest["counts"]["vocabulary"] > 0
    assert manifest["counts"]["neighbors"] == 50  # the default N


def bad_corpus(tmp_path):
    lines = (tmp_path / "planted.jsonl").read_text().splitlines()
    lines.insert(2, '{"id": "broken", "title": "unterminated')
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_line_exits_2_naming_file_and_line_and_keeps_current(tmp_path, models):
    before = model_dir.current_version(models)
    path = bad_corpus(tmp_path)
    result = run("train", "--corpus", path, "--models-dir", models, *FAST)
    assert result.exit_code == 2
    assert f"{path}:3: malformed JSON" in result.stderr
    assert result.stdout == ""
    assert model_dir.current_version(models) == before
    assert model_dir.list_versions(models) == [before]


def test_skip_invalid_reports_the_skipped_lines(tmp_path, models):
    path = bad_corpus(tmp_path)
    result = run("train", "--corpus", path, "--models-dir", models, "--skip-invalid", *FAST)
    assert result.exit_code == 0, result.output
    assert re.search(rf"^skipped: {re.escape(str(path))}:3: malformed JSON", result.stderr, re.M)
    version, summary, _ = result.stdout.splitlines()
    articles, _, _, skipped = SUMMARY.match(summary).groups()
    assert (articles, skipped) == (str(len(IDS)), "1")
    manifest = model_dir.verify(models / version)
    assert manifest["corpus"]["skipped"] == 1 and manifest["corpus"]["skipped_lines"] == [3]


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["guid", "headline", "content", "labels", "url"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def csv_store(tmp_path):
    rows = [{"guid": f"g{r['id']}", "headline": r["title"], "content": r["body"],
             "labels": "|".join(r["tags"]), "url": f"https://example.org/{r['id']}"}
            for r in PLANTED.records]
    path = write_csv(tmp_path / "news.csv", rows)
    store = tmp_path / "models"
    result = run("train", "--corpus", path, "--models-dir", store, "--id-field", "guid",
                 "--text-fields", "headline,content", "--tag-fields", "labels",
                 "--title-field", "headline", "--date-field", "", *FAST)
    assert result.exit_code == 0, result.output
    return store, rows


def test_field_options_on_a_csv_corpus(csv_store):
    store, rows = csv_store
    path = model_dir.resolve(store)
    manifest = model_dir.verify(path)
    assert manifest["fields"]["id_field"] == "guid"
    assert manifest["fields"]["text_fields"] == ["headline", "content"]
    assert manifest["fields"]["tag_fields"] == ["labels"]
    assert manifest["params"]["vectorizer"]["text_fields"] == ["headline", "content"]
    articles = model_dir.read_articles(path)
    assert [a["id"] for a in articles] == [r["guid"] for r in rows]
    assert [a["title"] for a in articles] == [r["headline"] for r in rows]
    assert articles[0]["tags"] == rows[0]["labels"].split("|")
    assert articles[0]["url"] == rows[0]["url"]
    # The texts really were read: duplicates are each other's best match, the empty row has none.
    lists = {e["id"]: [i["id"] for i in e["related"]] for e in export(store)}
    assert lists["gtwin-a"][0] == "gtwin-b" and lists["gtwin-b"][0] == "gtwin-a"
    assert lists["gempty"] == []
    assert set(lists["gsail-0"][:5]) <= {f"g{i}" for i in PLANTED.sailing}


def test_title_field_is_not_repeated_in_the_display_body(csv_store):
    store, rows = csv_store
    with open(model_dir.resolve(store) / "texts.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line) for line in fh]
    assert [t["title"] for t in texts] == [r["headline"] for r in rows]
    assert [t["body"] for t in texts] == [r["content"] for r in rows]


def test_export_writes_one_ranked_list_per_article(models):
    entries = export(models)
    assert [e["id"] for e in entries] == IDS
    idx = model_dir.load_array(model_dir.resolve(models), "neighbors_indices")
    for row, entry in enumerate(entries):
        assert set(entry) == {"id", "related"}
        related = entry["related"]
        assert [r["id"] for r in related] == [IDS[j] for j in idx[row] if j >= 0]
        assert entry["id"] not in [r["id"] for r in related]
        scores = [r["score"] for r in related]
        assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
        assert len(related) <= 6
    assert any(len(e["related"]) == 6 for e in entries)


def test_export_k_version_and_out(tmp_path, corpus, models):
    first = model_dir.current_version(models)
    full = export(models)
    short = export(models, "-k", 2)
    assert [e["related"] for e in short] == [e["related"][:2] for e in full]
    result = run("train", "--corpus", corpus, "--models-dir", models, "--neighbors", 3,
                 "--jobs", "1", "--param", "latent_weight=0")
    assert result.exit_code == 0, result.output
    assert max(len(e["related"]) for e in export(models, "-k", 10)) == 3  # the new CURRENT
    assert export(models, "-k", 10, "--version", first) == export(models, "--version", first)
    assert export(models, "--version", first) == full
    out = tmp_path / "export.jsonl"
    run("export", "--models-dir", models, "--version", first, "--out", out)
    assert [json.loads(line) for line in out.read_text().splitlines()] == full


def test_query_prints_the_titled_list(models):
    result = run("query", "twin-a", "--models-dir", models, "-k", 3)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    twin = next(r for r in PLANTED.records if r["id"] == "twin-a")
    assert lines[0] == f"twin-a  {twin['title']}"
    assert len(lines) == 4
    ranked = [re.match(r"^\s+(\d)\. (\d\.\d{3})  (\S+)  (.*)$", line).groups()
              for line in lines[1:]]
    assert [int(r[0]) for r in ranked] == [1, 2, 3]
    assert ranked[0][1:3] == ("1.000", "twin-b") and ranked[0][3] == twin["title"]
    exported = export(models, "-k", 3)[IDS.index("twin-a")]["related"]
    assert [r[2] for r in ranked] == [e["id"] for e in exported]
    empty = run("query", "empty", "--models-dir", models)
    assert empty.exit_code == 0 and empty.stdout.splitlines() == ["empty  "]
    unknown = run("query", "nope", "--models-dir", models)
    assert unknown.exit_code == 2 and "unknown article id 'nope'" in unknown.stderr


def test_evaluate_prints_and_writes_the_metrics(tmp_path, models):
    topic = PLANTED.topic_of()
    labelled = [dict(r, topic=[topic.get(r["id"], "none")]) for r in PLANTED.records]
    labels = write_jsonl(tmp_path / "labels.jsonl", labelled)
    queries = tmp_path / "queries.txt"
    queries.write_text("sail-0\ntax-1\ntwin-a\n")
    out = tmp_path / "metrics.json"
    result = run("evaluate", "--corpus", labels, "--label-field", "topic", "-k", 3,
                 "--queries", queries, "--json", out, "--models-dir", models)
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"precision_at_k", "map_at_k", "ndcg_at_k", "coverage", "k", "queries"}
    assert metrics["k"] == 3 and metrics["queries"] == 3
    assert metrics["precision_at_k"] == 1.0  # topics with disjoint words: all hits
    assert 0 < metrics["coverage"] < 1  # the empty article is in no list
    for key, label in (("precision_at_k", "precision@3"), ("map_at_k", "map@3"),
                       ("ndcg_at_k", "ndcg@3"), ("coverage", "coverage")):
        assert re.search(rf"^{re.escape(label)}\s+{metrics[key]:.4f}$", result.stdout, re.M)
    assert re.search(r"^queries\s+3$", result.stdout, re.M)
    partial = write_jsonl(tmp_path / "partial.jsonl", labelled[:-1])
    missing = run("evaluate", "--corpus", partial, "--label-field", "topic", "--models-dir", models)
    assert missing.exit_code == 2 and "1 model articles have no record" in missing.stderr


def test_models_dir_from_the_environment(tmp_path, corpus):
    env = {"RELATED_MODELS_DIR": str(tmp_path / "from-env")}
    result = run("train", "--corpus", corpus, *FAST, env=env)
    assert result.exit_code == 0, result.output
    assert model_dir.current_version(tmp_path / "from-env") == result.stdout.splitlines()[0]
    exported = run("export", "-k", 1, env=env)
    assert exported.exit_code == 0 and len(exported.stdout.splitlines()) == len(IDS)


@pytest.mark.parametrize("command", [["export"], ["query", "sail-0"],
                                     ["evaluate", "--label-field", "tags"]])
def test_missing_model_is_a_clear_error(tmp_path, corpus, command):
    if command[0] == "evaluate":
        command = [*command, "--corpus", str(corpus)]
    result = run(*command, "--models-dir", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "no model yet" in result.stderr and "related train" in result.stderr


def test_unknown_version_and_tampered_model_are_clear_errors(models):
    result = run("export", "--models-dir", models, "--version", "20300101T000000Z-deadbeef")
    assert result.exit_code == 2 and "version not found" in result.stderr
    path = model_dir.resolve(models)
    scores = path / "neighbors_scores.npy"
    np.save(scores, np.zeros((len(IDS), 6), dtype=np.float32))
    result = run("export", "--models-dir", models)
    assert result.exit_code == 2 and f"{scores}: checksum mismatch" in result.stderr


def test_the_console_script_keeps_each_command_exit_code(tmp_path):
    script = [sys.executable, "-c", "from training.cli import entry; entry()"]
    ok = subprocess.run([*script, "--help"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "Usage: " in ok.stdout
    bad = subprocess.run([*script, "train", "--corpus", str(tmp_path / "missing.jsonl"), "--models-dir",
                          str(tmp_path / "models")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot open corpus" in bad.stderr
