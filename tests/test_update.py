"""`related update` (training.update): reverse relations, deletions, edits, and identity with a full recomputation."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
from click.testing import CliRunner

from tests.fixtures.planted import random_words, write_jsonl
from training import model_dir
from training import update as update_module
from training import update_lists, update_merge, update_state
from training.cli import main
from training.first_pass import compute_first_pass, latent_dots
from training.pipeline import train
from training.update import update

VECTORIZER = {"min_df": 1, "n_components": 6, "stop_words": None}
TOPICS = 4
WORDS = random_words(TOPICS * 12, seed=7).reshape(TOPICS, 12)


def article(ident, topic, rng, n_words=14):
    """A record drawn from one topic's words (topic -1: no text)."""
    if topic < 0:
        return {"id": ident, "title": "", "body": "", "tags": []}
    words = WORDS[topic]
    return {"id": ident, "title": " ".join(rng.choice(words, 3)), "body": " ".join(rng.choice(words, n_words)),
            "tags": [f"topic{topic}"], "url": f"https://example.org/{ident}"}


def random_records(n, seed, prefix="a"):
    """Articles of random topics with exact duplicates and empty ones (ties everywhere)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        if records and rng.random() < 0.15:
            twin = records[int(rng.integers(len(records)))]
            records.append({**twin, "id": f"{prefix}{i}"})
        else:
            records.append(article(f"{prefix}{i}", int(rng.integers(-1 if i % 17 == 5 else 0, TOPICS)), rng))
    return records


def apply_delta(records, delta):
    """The updated corpus: old records in order with edits in place, deletions removed, additions appended."""
    changes = {r["id"]: r for r in delta}
    known = {r["id"] for r in records}
    out = [changes.get(r["id"], r) for r in records]
    out = [r for r in out if not r.get("deleted")]
    return out + [r for r in delta if r["id"] not in known]


def fit(tmp_path, records, name="models", **options):
    """Train on records into tmp_path/name; return the TrainResult."""
    corpus = write_jsonl(tmp_path / f"{name}.jsonl", records)
    return train(corpus, tmp_path / name, n_jobs=1, keep=50, vectorizer_params=VECTORIZER, **options)


def assert_same_version(a, b):
    """Two versions hold the same rows, lists, vectors and display files."""
    for name in ("article_ids", "neighbors_indices", "published", "vectors_dense", "vectors_sparse_data",
                 "update_first_indices", "update_first_scores", "update_first_sparse"):
        x, y = model_dir.load_array(a, name), model_dir.load_array(b, name)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    # the update state: each row's candidates are a prefix of the recomputation's (updates may
    # leave shorter lists), with the same latent scores and sparse parts
    cand_a, cand_b = model_dir.load_array(a, "update_candidates"), model_dir.load_array(b, "update_candidates")
    if cand_b.shape[1]:
        held = cand_a >= 0
        assert np.array_equal(np.where(held, cand_a, -1), np.where(held, cand_b, -1))
        for name in ("update_candidate_latent", "update_candidate_sparse"):
            x, y = model_dir.load_array(a, name), model_dir.load_array(b, name)
            w = x.shape[1]
            assert np.array_equal(np.where(held[:, :w], x, 0), np.where(held[:, :w], y[:, :w], 0)), name
    scores_a, scores_b = model_dir.load_array(a, "neighbors_scores"), model_dir.load_array(b, "neighbors_scores")
    assert np.abs(scores_a - scores_b).max(initial=0) <= 1e-5
    for name in ("articles.jsonl", "texts.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def updated_and_recomputed(tmp_path, records, delta, update_jobs=1, **options):
    """Train on records, update with delta, and train --features-from on the updated corpus."""
    base = fit(tmp_path, records, **options)
    result = update(tmp_path / "models", write_jsonl(tmp_path / "delta.jsonl", delta), keep=50, n_jobs=update_jobs)
    full = train(write_jsonl(tmp_path / "updated.jsonl", apply_delta(records, delta)), tmp_path / "full",
                 n_jobs=1, features_from=base.path, **options)
    return result, full


def lists_by_id(path):
    """Article id -> ids of its stored list."""
    ids = model_dir.load_array(path, "article_ids")
    idx = model_dir.load_array(path, "neighbors_indices")
    return {str(ids[i]): [str(ids[j]) for j in row if j >= 0] for i, row in enumerate(idx)}


@pytest.fixture(params=["compiled", "numpy"])
def loops(request, monkeypatch):
    """Run with the compiled loops (training._update_kernels) and with their numpy equivalent."""
    if request.param == "numpy":
        monkeypatch.setattr(update_lists, "LOOPS", None)
    elif update_lists.LOOPS is None:
        pytest.skip("training._update_kernels is not built (no C compiler at install)")
    return request.param


@pytest.fixture
def small_reserve(monkeypatch):
    """Keep 3 latent candidates beyond the rescored ones, so small corpora use the candidate state."""
    monkeypatch.setattr(update_state, "RESERVE", 3)


def test_added_article_appears_in_the_lists_of_the_older_articles_it_belongs_to(tmp_path, small_reserve):
    rng = np.random.default_rng(0)
    records = [article(f"t{t}-{i}", t, rng) for i in range(10) for t in range(TOPICS)]
    twin_of = records[6]  # topic 2
    added = [{**twin_of, "id": "new-twin"}, article("new-2", 2, rng, n_words=40)]
    before = lists_by_id(fit(tmp_path, records, neighbors=5, candidates=8).path)
    result = update(tmp_path / "models", write_jsonl(tmp_path / "delta.jsonl", added), n_jobs=1)
    after = lists_by_id(result.path)
    assert result.added == 2 and result.articles == len(records) + 2
    assert result.rows["patched"] > 0 and result.rows["recomputed"] >= 2
    assert after[twin_of["id"]][0] == "new-twin"  # its exact copy now leads its list
    hosts = {a for a, related in after.items() if "new-2" in related}
    topic2 = {r["id"] for r in records if r["tags"] == ["topic2"]}
    assert hosts and hosts - {"new-twin"} <= topic2  # only related articles list it
    assert all("new-2" not in before[a] for a in hosts - {"new-twin"})
    full = fit(tmp_path, records + added, name="full", neighbors=5, candidates=8,
               features_from=model_dir.resolve(tmp_path / "models", result.parent))
    assert_same_version(result.path, full.path)


def test_deleted_article_vanishes_from_every_list(tmp_path, small_reserve):
    records = random_records(60, seed=1)
    gone = {records[3]["id"], records[40]["id"]}
    delta = [{"id": i, "deleted": True} for i in sorted(gone)]
    result, full = updated_and_recomputed(tmp_path, records, delta, neighbors=6, candidates=8)
    before = lists_by_id(model_dir.resolve(tmp_path / "models", result.parent))
    assert sum(len(gone & set(related)) for related in before.values()) >= 6
    after = lists_by_id(result.path)
    assert result.deleted == 2 and len(after) == len(records) - 2 and not gone & set(after)
    assert all(not gone & set(related) for related in after.values())
    assert_same_version(result.path, full.path)


def test_edited_article_moves_to_its_new_topic(tmp_path, small_reserve):
    rng = np.random.default_rng(2)
    records = [article(f"t{t}-{i}", t, rng) for i in range(8) for t in range(TOPICS)]
    edited = article("t0-3", 3, rng, n_words=30)  # was topic 0
    result, full = updated_and_recomputed(tmp_path, records, [edited], neighbors=5, candidates=8)
    after = lists_by_id(result.path)
    topic_of = {r["id"]: r["tags"][0] for r in records}
    assert result.edited == 1 and result.articles == len(records)
    assert after["t0-3"] and all(topic_of[j] == "topic3" for j in after["t0-3"])
    assert any("t0-3" in after[a] for a in after if topic_of[a] == "topic3")
    assert all("t0-3" not in after[a] for a in after if topic_of[a] == "topic0")
    assert_same_version(result.path, full.path)


def test_metadata_only_edit_keeps_the_lists_and_rewrites_the_row(tmp_path, small_reserve):
    records = random_records(40, seed=3)
    moved = {**records[5], "url": "https://example.org/moved", "section": "world"}
    result, full = updated_and_recomputed(tmp_path, records, [moved], neighbors=6, candidates=8)
    assert result.rows == {"kept": len(records), "patched": 0, "recomputed": 0, "undecided": 0, "reranked": 0}
    assert model_dir.read_articles(result.path)[5]["url"] == "https://example.org/moved"
    assert_same_version(result.path, full.path)


CONFIGS = [
    pytest.param({"neighbors": 6, "candidates": 8}, id="candidates"),
    pytest.param({"neighbors": 6, "candidates": 8, "compiled": True}, id="compiled-kernels"),
    pytest.param({"neighbors": 6, "candidates": 8, "chunk_rows": 5}, id="chunks-in-threads"),
    pytest.param({"neighbors": 5, "candidates": 8, "expand_neighbors": 0}, id="no-expansion"),
    pytest.param({"neighbors": 6, "candidates": 0}, id="exhaustive"),
]


@pytest.mark.parametrize("options", CONFIGS)
@pytest.mark.parametrize("seed", range(5))
def test_update_equals_a_full_recomputation_on_random_corpora(tmp_path, small_reserve, seed, options, monkeypatch,
                                                              loops):
    options = dict(options)
    if options.pop("compiled", False):  # training's numba kernels instead of the numpy twins
        monkeypatch.setattr(update_module, "COMPILED_ABOVE", -1)
    chunk_rows = options.pop("chunk_rows", None)
    if chunk_rows:  # the merge in many chunks, on 3 threads
        monkeypatch.setattr(update_lists, "CHUNK_ROWS", chunk_rows)
        monkeypatch.setattr(update_lists, "RERANK_ROWS", chunk_rows)
    jobs = 3 if chunk_rows else 1
    rng = np.random.default_rng(100 + seed)
    records = random_records(int(rng.integers(40, 90)), seed=seed)
    ids = [r["id"] for r in records]
    delta = random_records(int(rng.integers(1, 8)), seed=1000 + seed, prefix="new")
    delta += [{**records[int(rng.integers(len(records)))], "id": f"copy{k}"} for k in range(2)]  # ties
    for i in rng.choice(len(ids), size=int(rng.integers(0, 6)), replace=False):
        delta.append(article(ids[i], int(rng.integers(0, TOPICS)), rng))
    for i in rng.choice(len(ids), size=int(rng.integers(0, 6)), replace=False):
        if ids[i] not in {r["id"] for r in delta}:
            delta.append({"id": ids[i], "deleted": True})
    rng.shuffle(delta)
    result, full = updated_and_recomputed(tmp_path, records, delta, update_jobs=jobs, **options)
    assert_same_version(result.path, full.path)
    # and again, from the updated version
    records2 = apply_delta(records, delta)
    delta2 = random_records(3, seed=2000 + seed, prefix="more") + [{"id": records2[0]["id"], "deleted": True}]
    again = update(tmp_path / "models", write_jsonl(tmp_path / "delta2.jsonl", delta2), keep=50, n_jobs=jobs)
    full2 = train(write_jsonl(tmp_path / "updated2.jsonl", apply_delta(records2, delta2)), tmp_path / "full2",
                  n_jobs=1, features_from=full.path, **options)
    assert_same_version(again.path, full2.path)


def test_every_update_path_is_exercised(tmp_path, small_reserve, monkeypatch, loops):
    tied = []  # merges where an entrant ties a stored entry's latent score (rows compared)
    order_keys = update_merge.order_keys
    monkeypatch.setattr(update_merge, "order_keys", lambda lat, rows: tied.append(1) or order_keys(lat, rows))
    rng = np.random.default_rng(5)
    records = [article(f"t{t}-{i}", t, rng) for i in range(30) for t in range(TOPICS)]
    records += [{**records[i], "id": f"dup{i}"} for i in range(0, 120, 7)]  # exact ties
    delta = [{"id": f"t0-{i}", "deleted": True} for i in range(14)]  # drains topic 0's candidates
    delta += [{**records[i], "id": f"copy{i}"} for i in range(1, 120, 5)] + [article("t1-4", 2, rng)]
    delta += [{**records[61], "id": records[2]["id"]}]  # an early row edited into a later one's twin
    # first-pass lists (4) shorter than the candidates (10), so some survive a changed top
    result, full = updated_and_recomputed(tmp_path, records, delta, neighbors=4, candidates=10,
                                          expand_neighbors=0)
    rows = result.rows
    assert rows["kept"] > 0 and rows["patched"] > 0 and rows["undecided"] > 0
    assert tied or loops == "compiled"  # the numpy merge compared rows of tied entries
    changed = len(delta) - 14  # 24 copies added, t1-4 and t2-0 edited
    assert rows["recomputed"] == rows["undecided"] + changed
    assert rows["kept"] + rows["patched"] + rows["undecided"] == len(records) - 14 - 2  # every other row
    assert_same_version(result.path, full.path)


def test_first_pass_of_some_rows_equals_theirs_in_the_full_pass():
    rng = np.random.default_rng(4)
    from training.features import ArticleVectorizer

    records = random_records(150, seed=4)
    sparse, dense = ArticleVectorizer(**VECTORIZER).fit(records).transform(records)
    full = compute_first_pass(sparse, dense, 10, 12, n_jobs=1)
    for size in (1, 2, 7):
        rows = np.sort(rng.choice(len(records), size, replace=False))
        part = compute_first_pass(sparse, dense, 10, 12, rows=rows, n_jobs=2)
        for name in ("indices", "scores", "candidates", "latent"):
            assert np.array_equal(getattr(part, name), getattr(full, name)[rows]), (size, name)
    # ties resolve to the lower row at both cut-offs
    lat = dense @ dense.T
    for i in range(len(records)):
        c = full.candidates[i]
        key = list(zip(-full.latent[i], c))
        assert key == sorted(key) and i not in c
        outside = np.setdiff1d(np.arange(len(records)), np.append(c, i))
        assert all(lat[i, j] < full.latent[i, -1] or (lat[i, j] == full.latent[i, -1] and j > c[-1])
                   for j in outside)


@pytest.mark.parametrize("dims", [6, 40, 100])
def test_latent_dots_are_the_same_floats_in_any_block(dims):
    z = np.random.default_rng(dims).standard_normal((300, dims)).astype(np.float32)
    block = latent_dots(z[:100], z.T)
    assert np.allclose(block, z[:100].astype(np.float64) @ z.T.astype(np.float64), atol=1e-4)
    assert np.array_equal(latent_dots(z[7:8], z.T), block[7:8])
    assert np.array_equal(latent_dots(z[7:8], z[9:10].T), block[7:8, 9:10])
    assert np.array_equal(latent_dots(z[[3, 50, 51]], z[[9, 200]].T), block[np.ix_([3, 50, 51], [9, 200])])


def test_scores_split_over_threads_are_the_same_floats():
    from training.features import ArticleVectorizer

    records = random_records(400, seed=6)
    sparse, dense = ArticleVectorizer(**VECTORIZER).fit(records).transform(records)
    vec = update_lists.Vectors(sparse.indptr, sparse.indices, sparse.data, dense, sparse.shape[1])
    q, base_t = dense[[5, 17, 300]], np.ascontiguousarray(dense.T)
    assert np.array_equal(vec.latent_dots(q, base_t, threads=3), vec.latent_dots(q, base_t))
    rows = np.arange(200)
    cand = np.random.default_rng(6).integers(-1, len(records), size=(200, 9))
    assert np.array_equal(vec.pair_dots(rows, cand, threads=3), vec.pair_dots(rows, cand))
    lat = vec.latent_dots(dense[rows], base_t)
    one = update_lists.first_pass_rows(vec, rows, lat.copy(), 6, 12)
    three = update_lists.first_pass_rows(vec, rows, lat.copy(), 6, 12, threads=3)
    for name in ("indices", "scores", "candidates", "latent", "first_sparse", "candidate_sparse"):
        assert np.array_equal(getattr(one, name), getattr(three, name)), name


def run(*args):
    """Invoke `related` in-process; return the click Result."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def store(tmp_path):
    """A store with one version trained by the CLI on 50 random articles."""
    records = random_records(50, seed=11)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", records)
    result = run("train", "--corpus", corpus, "--models-dir", tmp_path / "models", "--neighbors", 5,
                 "--candidates", 10, "--jobs", 1, "--param", "min_df=1", "--param", "n_components=5")
    assert result.exit_code == 0, result.output
    return tmp_path / "models", records


def test_cli_update_then_train_features_from_agree(tmp_path, store):
    models, records = store
    parent = model_dir.resolve(models)
    delta = random_records(3, seed=12, prefix="new") + [{"id": records[1]["id"], "deleted": True}]
    path = write_jsonl(tmp_path / "delta.jsonl", delta)
    result = run("update", "--corpus", path, "--models-dir", models, "--jobs", 1)
    assert result.exit_code == 0, result.output
    version, summary, rows = result.stdout.splitlines()
    assert model_dir.current_version(models) == version
    assert summary.startswith(f"articles: {len(records) + 2}  added: 3  edited: 0  deleted: 1  time: ")
    assert rows.endswith(f"(parent {parent.name})")
    manifest = model_dir.verify(models / version)
    assert manifest["parent_version"] == parent.name and manifest["update"]["deleted"] == 1
    assert manifest["update"]["loops"] == ("numpy" if update_lists.LOOPS is None else "compiled")
    parent_libraries = model_dir.read_manifest(parent)["libraries"]  # the features' libraries, this run's numpy
    assert manifest["libraries"] == {**parent_libraries, "python": platform.python_version(), "numpy": np.__version__}
    assert (models / version / "vectorizer.joblib").samefile(parent / "vectorizer.joblib")
    updated = write_jsonl(tmp_path / "updated.jsonl", apply_delta(records, delta))
    full = run("train", "--corpus", updated, "--models-dir", tmp_path / "full", "--neighbors", 5,
               "--candidates", 10, "--jobs", 1, "--features-from", parent)
    assert full.exit_code == 0, full.output
    exports = [run("export", "--models-dir", m, "-k", 5).stdout for m in (models, tmp_path / "full")]
    assert exports[0] == exports[1] and len(exports[0].splitlines()) == len(records) + 2


@pytest.mark.parametrize("lines, message", [
    (['{"id": "nope", "deleted": true}'], "{path}:1: id: deletes 'nope', which is not in the model"),
    (['{"id": "x1", "title": "t", "body": "b"}', "{not json"], "{path}:2: malformed JSON"),
    (['{"id": "x1", "title": "t"}', '{"id": "x1", "title": "u"}'], "{path}:2: id: duplicate id 'x1'"),
    (['{"id": "x1", "title": 3}'], "{path}:1: title: expected a string or null"),
    ([], "{path}: no records: nothing to update"),
])
def test_bad_delta_exits_2_naming_the_line_and_keeps_current(tmp_path, store, lines, message):
    models, _ = store
    before = model_dir.current_version(models), sorted(p.name for p in models.iterdir())
    path = tmp_path / "delta.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    result = run("update", "--corpus", path, "--models-dir", models)
    assert result.exit_code == 2
    assert message.format(path=path) in result.stderr
    assert (model_dir.current_version(models), sorted(p.name for p in models.iterdir())) == before


def test_update_refuses_to_delete_everything_and_needs_a_model(tmp_path, store):
    models, records = store
    path = write_jsonl(tmp_path / "all.jsonl", [{"id": r["id"], "deleted": True} for r in records])
    result = run("update", "--corpus", path, "--models-dir", models)
    assert result.exit_code == 2 and "would delete every article" in result.stderr
    result = run("update", "--corpus", path, "--models-dir", tmp_path / "empty")
    assert result.exit_code == 2 and "no model yet" in result.stderr


def test_update_refuses_a_version_without_update_state(tmp_path, store):
    models, _ = store
    path = model_dir.resolve(models)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["files"]["update_candidates.npy"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    result = run("update", "--corpus", write_jsonl(tmp_path / "d.jsonl", random_records(1, 1, "n")),
                 "--models-dir", models)
    assert result.exit_code == 2 and "no update state (update_candidates.npy" in result.stderr


@pytest.mark.parametrize("damage", ["update_candidate_sparse.npy", "vectors_sparse_data.npy", "vectorizer.json"])
def test_a_corrupt_parent_is_refused_and_nothing_is_published(tmp_path, store, damage):
    models, _ = store
    parent = model_dir.resolve(models)
    target = parent / damage
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte: the file still parses, the checksum does not match
    target.unlink()  # versions share hard links with their parents: replace, do not write through
    target.write_bytes(bytes(data))
    result = run("update", "--corpus", write_jsonl(tmp_path / "d.jsonl", random_records(2, 5, "n")),
                 "--models-dir", models)
    assert result.exit_code == 2 and f"{target}: checksum mismatch" in result.stderr
    assert model_dir.current_version(models) == parent.name
    assert model_dir.list_versions(models) == [parent.name]
