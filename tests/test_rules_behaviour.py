"""Each newsroom rule on a small handmade corpus: pins, freshness, tags, exclusions, fallback, dedupe, MMR, scan."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from training.neighbors import MIN_SCORE

NEIGHBORS = 5
DAY = 86400.0


def make_newsroom_corpus(path: Path) -> list[dict]:
    """Two topics with disjoint words, monthly dates (oil-6 undated), pins on oil-0, a copy and an update of oil-1."""
    rng = random.Random(7)
    records = []
    for topic, tags, section, day in (("oil", ["Energy"], None, 15), ("ball", ["Sport"], "sport", 20)):
        words = [f"{topic}{j}" for j in range(40)]
        for i in range(12):
            records.append({"id": f"{topic}-{i}", "title": " ".join(rng.sample(words, 3)),
                            "body": " ".join(rng.sample(words, 12)),
                            "tags": tags + (["Markets"] if topic == "oil" and i >= 9 else []),
                            "section": section or ("business" if i % 2 else "world"),
                            "published_at": None if f"{topic}-{i}" == "oil-6" else f"2024-{1 + i:02d}-{day}"})
    records[0]["related_ids"] = ["ball-3", "missing", "oil-5", "ball-3"]
    records.append({**records[1], "id": "oil-copy", "published_at": "2024-02-16"})
    records.append({**records[1], "id": "oil-update", "body": records[1]["body"] + " oil3", "published_at": "2024-02-17"})
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return records


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory, train_tiny):
    """(models_dir, records by id, brute-force similarity matrix, model) of the newsroom corpus."""
    from service.store import ModelStore

    work = tmp_path_factory.mktemp("newsroom")
    records = make_newsroom_corpus(work / "corpus.jsonl")
    train_tiny(work / "corpus.jsonl", work / "models", neighbors=NEIGHBORS)
    model = ModelStore(work / "models").refresh()
    sparse = model.vectors_sparse.astype(np.float64)
    dense = np.asarray(model.vectors_dense, dtype=np.float64)
    sims = (sparse @ sparse.T).toarray() + dense @ dense.T
    return work / "models", {r["id"]: r for r in records}, sims, model


def make_client(newsroom, **settings):
    from service import create_app

    return create_app({"models_dir": str(newsroom[0]), "dedupe": "off", **settings}).test_client()


@pytest.fixture(scope="module")
def client(newsroom):
    return make_client(newsroom)


def related(client, article_id: str, query: str = "") -> list[dict]:
    response = client.get(f"/articles/{article_id}/related?{query}")
    assert response.status_code == 200, response.data
    return response.get_json()["related"]


def ids(items: list[dict]) -> list[str]:
    return [item["id"] for item in items]


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def sim(newsroom, a: str, b: str) -> float:
    model = newsroom[3]
    return float(newsroom[2][model.row_of[a], model.row_of[b]])


def test_editor_pins_come_first_in_order_once(client):
    items = related(client, "oil-0", "k=5")
    assert ids(items)[:2] == ["ball-3", "oil-5"] and [i["reason"] for i in items[:2]] == ["editor"] * 2
    assert {i["reason"] for i in items[2:]} == {"similar"} and len(items) == 5
    assert len(set(ids(items))) == 5  # oil-5 is in oil-0's own list too: not repeated below
    assert ids(related(client, "oil-0", "k=1")) == ["ball-3"]
    assert ids(related(client, "oil-0", "k=5&exclude=ball-3"))[:1] == ["oil-5"]
    assert "ball-3" not in ids(related(client, "oil-0", "k=5&require_tags=energy"))


def test_max_age_days_and_past_only_are_hard_windows(client, newsroom):
    by_id = newsroom[1]
    query = epoch(by_id["oil-2"]["published_at"])
    items = related(client, "oil-2", "k=5&max_age_days=40")
    assert items and all(abs(epoch(i["published_at"]) - query) <= 40 * DAY for i in items)
    past = related(client, "oil-2", "k=5&past_only=true")
    assert past and all(epoch(i["published_at"]) <= query for i in past)
    assert "oil-6" in ids(related(client, "oil-2", "k=5"))  # the undated article is related...
    assert "oil-6" not in ids(related(client, "oil-2", "k=5&max_age_days=5000"))  # ...and dropped by windows
    assert "oil-6" not in ids(related(client, "oil-2", "k=5&past_only=true"))
    assert ids(related(client, "oil-2", "k=5&max_age_days=0")) == []


def test_half_life_multiplies_scores_by_the_age_decay(client, newsroom):
    by_id = newsroom[1]
    items = related(client, "oil-2", "k=5&half_life_days=30")
    query = epoch(by_id["oil-2"]["published_at"])
    for item in items:
        published = by_id[item["id"]]["published_at"]
        factor = 1.0 if published is None else 0.5 ** (abs(epoch(published) - query) / DAY / 30)
        assert item["score"] == pytest.approx(sim(newsroom, "oil-2", item["id"]) * factor, abs=1e-5)
    assert ids(items)[0] == "oil-6"  # undated: kept, undecayed, so it rises to the top
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)


def test_tags_same_and_filter(client, newsroom):
    by_id = newsroom[1]
    assert set(ids(related(client, "oil-0", "k=5&require_tags=MARKETS"))) <= {"oil-9", "oil-10", "oil-11"}
    assert all("Energy" not in by_id[i]["tags"] for i in ids(related(client, "oil-0", "k=5&exclude_tags=energy")))
    same = related(client, "oil-0", "k=5&same=section")
    assert same and all(by_id[i]["section"] == "world" for i in ids(same))
    either = related(client, "oil-1", "k=5&filter=section:business&filter=section:world")
    assert ids(either) == ids(related(client, "oil-1", "k=5"))  # values of one field are alternatives
    both = related(client, "oil-1", "k=5&filter=section:business&filter=tags:Markets")
    assert both and all(by_id[i]["section"] == "business" and "Markets" in by_id[i]["tags"] for i in ids(both))
    assert related(client, "oil-1", "k=5&same=no_such_field") == []


def test_global_exclusions_hold_for_every_reason(newsroom):
    client = make_client(newsroom, excluded_ids="oil-5,oil-3", excluded_tags="sport")
    for query in ("k=5", "k=5&fallback=recent&min_score=0.99"):
        found = ids(related(client, "oil-0", query))
        assert found and not {"oil-5", "oil-3"} & set(found)
        assert not any(i.startswith("ball-") for i in found)  # the Sport pin ball-3 included
    assert related(client, "oil-3", "k=2")  # an excluded article still has its own box


def test_min_score_and_fallback(client, newsroom):
    by_id = newsroom[1]
    strong = related(client, "oil-0", "k=5&min_score=0.8&exclude=ball-3,oil-5")
    assert strong and all(sim(newsroom, "oil-0", i) >= 0.8 - 1e-6 for i in ids(strong))
    filled = related(client, "oil-0", "k=5&min_score=0.8&exclude=ball-3,oil-5&fallback=recent")
    assert len(filled) == 5 and ids(filled)[: len(strong)] == ids(strong)
    extra = [i for i in filled if i["reason"] == "fallback"]
    assert extra and all(i["id"] not in {"oil-0", "ball-3", "oil-5"} for i in extra)
    dates = [epoch(by_id[i["id"]]["published_at"]) for i in extra]
    assert dates == sorted(dates, reverse=True)
    newest = sorted((r for r in by_id.values() if r["published_at"] and r["id"] not in {"oil-0", "ball-3", "oil-5",
                                                                                       *ids(strong)}),
                    key=lambda r: r["published_at"], reverse=True)
    assert ids(extra) == [r["id"] for r in newest[: len(extra)]]
    same_tag = related(client, "oil-0", "k=5&min_score=0.8&exclude=ball-3,oil-5&fallback=recent_same_tag")
    assert all("Energy" in by_id[i]["tags"] for i in ids(same_tag))


def test_dedupe_skips_copies_of_the_query_and_of_chosen_items(newsroom):
    client = make_client(newsroom, dedupe="0.9")
    assert {"oil-copy", "oil-update"} <= set(ids(related(client, "oil-1", "k=5&dedupe=off")))
    assert not {"oil-copy", "oil-update"} & set(ids(related(client, "oil-1", "k=5")))  # the default setting
    plain = ids(related(client, "oil-4", "k=6&dedupe=off"))
    assert {"oil-1", "oil-copy", "oil-update"} <= set(plain)
    deduped = ids(related(client, "oil-4", "k=5"))
    assert len({"oil-1", "oil-copy", "oil-update"} & set(deduped)) == 1 and len(deduped) == 5
    assert all(sim(newsroom, a, b) < 0.9 for a in deduped for b in deduped if a != b)


def test_diversity_reranks_by_marginal_relevance(client, newsroom):
    assert related(client, "oil-4", "k=5&diversity=0") == related(client, "oil-4", "k=5")
    record = newsroom[1]["oil-4"]
    draft = {"title": record["title"], "body": record["body"], "k": 8}  # scans everything: a wide pool
    copies = {"oil-1", "oil-copy", "oil-update"}
    plain = client.post("/related", json=draft).get_json()["related"]
    assert copies <= set(ids(plain))
    diverse = client.post("/related", json={**draft, "diversity": 0.7}).get_json()["related"]
    assert len(diverse) == 8 and len(copies & set(ids(diverse))) == 1
    scores = [item["score"] for item in diverse]
    assert scores == sorted(scores, reverse=True)
    assert diverse[0]["id"] == plain[0]["id"] == "oil-4"  # nothing chosen yet: worth 0.3 * relevance
    assert diverse[0]["score"] == pytest.approx(0.3 * plain[0]["score"], abs=1e-5)


def test_explanations_name_shared_terms_and_tags(client, newsroom):
    by_id = newsroom[1]
    items = related(client, "oil-0", "k=5&explain=true")
    for item in items:
        why = item["explanation"]
        assert set(why) == {"shared_terms", "shared_tags"}
        assert why["shared_tags"] == [t for t in by_id[item["id"]]["tags"] if t in by_id["oil-0"]["tags"]]
        words = {w for r in ("oil-0", item["id"]) for w in (by_id[r]["title"] + " " + by_id[r]["body"]).split()}
        assert all(term in words for term, _ in why["shared_terms"])
        weights = [weight for _, weight in why["shared_terms"]]
        assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
    assert items[2]["explanation"]["shared_terms"]  # oil-0 and its nearest similar article share words
    assert items[0]["explanation"] == {"shared_terms": [], "shared_tags": []}  # the sport pin shares nothing
    assert "explanation" not in related(client, "oil-0", "k=5")[0]


def test_exhausted_list_triggers_an_exact_scan(client, newsroom):
    model, sims = newsroom[3], newsroom[2]
    row = model.row_of["oil-0"]
    stored = {str(model.article_ids[r]) for r in model.neighbors_indices[row] if r >= 0}
    found = related(client, "oil-0", "k=5&same=section&exclude=ball-3,oil-5")
    world = [r for r in range(model.n_articles) if r != row and newsroom[1][str(model.article_ids[r])]["section"]
             == "world" and sims[row, r] > MIN_SCORE]
    assert len(world) >= 5
    expected = sorted(world, key=lambda r: (-sims[row, r], r))[:5]
    assert ids(found) == [str(model.article_ids[r]) for r in expected]  # exactly k, the exact best
    assert not set(ids(found)) <= stored  # most of them were never in the stored top-5
    assert len(related(client, "oil-0", "k=20")) == NEIGHBORS  # GET serves at most the stored count


def test_draft_rules(client, newsroom):
    by_id = newsroom[1]
    draft = {"title": by_id["oil-3"]["title"], "body": by_id["oil-3"]["body"], "tags": ["Energy"], "k": 4}
    assert client.post("/related", json={**draft, "max_age_days": 30}).get_json()["related"] == []  # now: 2024 is old
    dated = client.post("/related", json={**draft, "max_age_days": 40, "published_at": "2024-04-15"}).get_json()
    assert dated["related"] and all(abs(epoch(i["published_at"]) - epoch("2024-04-15")) <= 40 * DAY
                                    for i in dated["related"])
    pinned = client.post("/related", json={**draft, "related_ids": ["ball-1", "oil-3"]}).get_json()["related"]
    assert ids(pinned)[:2] == ["ball-1", "oil-3"] and pinned[0]["reason"] == "editor"
    same = client.post("/related", json={**draft, "same": ["section"], "metadata": {"section": "business"}})
    assert all(by_id[i]["section"] == "business" for i in ids(same.get_json()["related"]))
    assert client.post("/related", json={**draft, "same": ["section"]}).get_json()["related"] == []
