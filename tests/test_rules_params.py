"""Every rule parameter: in /openapi.json, validated on GET and POST (400 + error shape), part of the cache key."""

from __future__ import annotations

import json

import pytest

from service.params import RULE_PARAMETERS, parse_rules
from tests.test_service_api import assert_error

# (parameter, good query-string value, good JSON value, bad query-string values, bad JSON values)
CASES = [
    ("max_age_days", "30", 30, ["-1", "abc", "nan", "inf", "", "1e9"], [-1, "30", True, None, [30]]),
    ("past_only", "true", True, ["yes", "1", "True", ""], ["true", 1, None]),
    ("half_life_days", "7.5", 7.5, ["0", "-2", "x", "nan"], [0, "7", False]),
    ("require_tags", "energy,space", ["energy"], ["", "a,,b", "x" * 301], ["energy", [1], [""], None]),
    ("exclude_tags", "energy", ["energy"], ["", ","], ["energy", [None]]),
    ("same", "section", ["section"], ["", "section,"], ["section", {}]),
    ("filter", "section:space", ["section:space"], ["section", ":space", ""], ["section:space", ["nocolon"]]),
    ("exclude", "energy-1,energy-2", ["energy-1"], ["", "a,"], ["energy-1", [3]]),
    ("min_score", "0.5", 0.5, ["1.5", "-0.1", "high", "nan"], [2, "0.5", True]),
    ("fallback", "recent", "recent", ["sometimes", "", "RECENT"], ["never", 1, None]),
    ("dedupe", "0.8", 0.8, ["0", "1.1", "on", "nan", ""], [0, 1.5, "0.8", True, None]),
    ("diversity", "0.3", 0.3, ["2", "-1", "some"], [1.01, "0.3", False]),
    ("explain", "true", True, ["no", "0", ""], ["true", 0, None]),
]


def test_every_rule_is_tested_here():
    assert [case[0] for case in CASES] == list(RULE_PARAMETERS)


def test_every_rule_is_in_openapi(client):
    spec = client.get("/openapi.json").get_json()
    get = spec["paths"]["/articles/{article_id}/related"]["get"]
    documented = {p["name"]: p for p in get["parameters"] if p["in"] == "query"}
    assert set(RULE_PARAMETERS) | {"k"} == set(documented)
    assert all(documented[name].get("description") for name in RULE_PARAMETERS)
    assert documented["filter"]["explode"] is True and documented["exclude"]["explode"] is False
    draft = spec["components"]["schemas"]["Draft"]["properties"]
    assert set(RULE_PARAMETERS) <= set(draft)
    assert {"published_at", "related_ids", "metadata"} <= set(draft)
    related = spec["components"]["schemas"]["RelatedArticle"]["allOf"][1]
    assert related["properties"]["reason"]["enum"] == ["editor", "similar", "fallback"]
    assert "explanation" in related["properties"]


@pytest.mark.parametrize(("name", "good", "good_json", "bad", "bad_json"), CASES, ids=[c[0] for c in CASES])
def test_good_values_are_accepted(client, name, good, good_json, bad, bad_json):
    assert client.get("/articles/energy-0/related", query_string={"k": "3", name: good}).status_code == 200
    response = client.post("/related", json={"body": "oil crude", name: good_json})
    assert response.status_code == 200, response.data


@pytest.mark.parametrize(("name", "good", "good_json", "bad", "bad_json"), CASES, ids=[c[0] for c in CASES])
def test_bad_values_answer_400_naming_the_parameter(client, name, good, good_json, bad, bad_json):
    for value in bad:
        error = assert_error(client.get("/articles/energy-0/related", query_string={name: value}),
                             400, "invalid_parameter")
        assert f"query parameter {name} " in error["message"]
    for value in bad_json:
        error = assert_error(client.post("/related", json={"body": "oil", name: value}), 400, "invalid_parameter")
        assert f"field {name} " in error["message"]


@pytest.mark.parametrize("name", [n for n in RULE_PARAMETERS if n not in {"require_tags", "exclude_tags", "same",
                                                                          "filter", "exclude"}])
def test_a_scalar_given_twice_is_400(client, name):
    good = next(case[1] for case in CASES if case[0] == name)
    error = assert_error(client.get("/articles/energy-0/related", query_string=[(name, good), (name, good)]),
                         400, "invalid_parameter")
    assert name in error["message"] and "2 times" in error["message"]


def test_unknown_parameter_is_400(client):
    error = assert_error(client.get("/articles/energy-0/related?k=3&max_age=3"), 400, "unknown_parameter")
    assert "max_age" in error["message"] and "max_age_days" in error["message"]
    assert_error(client.post("/related", json={"body": "oil", "max_age": 3}), 400, "invalid_draft")


def test_lists_repeat_and_normalise():
    params = parse_rules({"filter": ["section:a", "section:b", "section:a"], "exclude": ["x, y", "x"],
                          "require_tags": ["Energy,energy , SPACE"]}, 5, 0.9, from_text=True)
    assert params.filters == (("section", "a"), ("section", "b"))
    assert params.exclude == ("x", "y")
    assert params.require_tags == ("energy", "space")
    assert params.dedupe == 0.9
    assert parse_rules({"dedupe": ["off"]}, 5, 0.9, from_text=True).dedupe is None
    assert parse_rules({}, 5, None, from_text=True).dedupe is None
    assert parse_rules({"filter": [["a:b:c"]]}, 5, None, from_text=False).filters == (("a", "b:c"),)


def test_draft_fields_are_validated(client):
    for body, fragment in [({"published_at": "yesterday"}, "published_at"), ({"published_at": 5}, "published_at"),
                           ({"related_ids": "a"}, "related_ids"), ({"related_ids": [1]}, "related_ids"),
                           ({"metadata": []}, "metadata")]:
        error = assert_error(client.post("/related", json={"body": "oil", **body}), 400, "invalid_draft")
        assert fragment in error["message"]


def test_cache_key_includes_every_parameter(client):
    plain = client.get("/articles/energy-0/related?k=3").headers["ETag"]
    etags = {plain}
    for name, good, *_ in CASES:
        response = client.get("/articles/energy-0/related", query_string={"k": "3", name: good})
        assert response.status_code == 200
        etags.add(response.headers["ETag"])
        repeat = client.get("/articles/energy-0/related", query_string={"k": "3", name: good})  # fast path
        assert repeat.headers["ETag"] == response.headers["ETag"] and repeat.data == response.data
    assert len(etags) == len(CASES) + 1


def test_equivalent_spellings_share_one_cache_entry(client):
    first = client.get("/articles/energy-0/related?k=3&require_tags=Energy,space&min_score=0.5")
    second = client.get("/articles/energy-0/related?min_score=.50&require_tags=SPACE,%20energy&k=03")
    assert first.status_code == second.status_code == 200
    assert first.headers["ETag"] == second.headers["ETag"] and first.data == second.data


def test_rule_answers_come_from_the_fast_path_when_repeated(models_dir):
    from service import create_app

    app = create_app({"models_dir": str(models_dir)})
    calls = []
    app.before_request(lambda: calls.append(1))
    client = app.test_client()
    url = "/articles/energy-0/related?k=4&exclude=energy-1&explain=true"
    first, second = client.get(url), client.get(url)
    assert calls == [1] and second.data == first.data
    client.get("/articles/energy-0/related?k=4&exclude=energy-2&explain=true")
    assert calls == [1, 1]
    assert json.loads(first.data)["related"][0]["explanation"]["shared_tags"] == ["energy"]
