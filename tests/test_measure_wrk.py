"""Tests for benchmarks/serve_wrk.py's pure parts: parsing wrk reports, Lua strings, medians of runs."""

from __future__ import annotations

import json

import pytest

from benchmarks.serve_wrk import lua_string, median_runs, parse_wrk

REPORT = """Running 2s test @ http://127.0.0.1:40123
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.73ms   20.11ms 207.98ms   96.50%
    Req/Sec     3.07k   301.22     3.50k    75.00%
  Latency Distribution
     50%  {p50}
     75%    9.12ms
     90%   12.34ms
     99%  {p99}
  6134 requests in 2.00s, 12.34MB read
{errors}Requests/sec:   3067.42
Transfer/sec:      6.17MB
{check}"""


def report(p50: str = "7.73ms", p99: str = "207.98ms", errors: str = "", check: str = "") -> str:
    """A `wrk --latency` report with the given percentiles and optional error and check lines."""
    return REPORT.format(p50=p50, p99=p99, errors=errors, check=check)


def test_clean_report():
    result = parse_wrk(report())
    assert result == {"rps": 3067.42, "requests": 6134, "p50_ms": pytest.approx(7.73), "p75_ms": pytest.approx(9.12),
                      "p90_ms": pytest.approx(12.34), "p99_ms": pytest.approx(207.98), "socket_errors": 0,
                      "non_2xx": 0, "errors": 0}


@pytest.mark.parametrize(("text", "ms"), [("412.00us", 0.412), ("1.50s", 1500.0), ("2.00m", 120_000.0)])
def test_latency_units(text, ms):
    assert parse_wrk(report(p50=text))["p50_ms"] == pytest.approx(ms)


def test_errors_and_version_check_are_counted():
    errors = "  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 5\n"
    result = parse_wrk(report(errors=errors, check="checked 6134 mismatched 7\n"))
    assert (result["socket_errors"], result["non_2xx"], result["errors"]) == (10, 5, 15)
    assert (result["checked"], result["mismatched"]) == (6134, 7)


def test_lua_string_round_trips_json_bodies():
    body = json.dumps({"title": 'He said "hi"\n', "body": "a\\b", "k": 10})
    literal = lua_string(body)
    assert literal.startswith('"') and literal.endswith('"') and "\n" not in literal
    assert json.loads(literal) == body


def test_median_runs():
    runs = [{"rps": rps, "p50_ms": p50, "p99_ms": 10 * p50, "per_cpu_s": 2 * rps, "errors": e, "requests": n}
            for rps, p50, e, n in ((100.0, 3.0, 0, 1000), (300.0, 1.0, 2, 3000), (200.0, 2.0, 1, 2000))]
    summary = median_runs(runs)
    assert {k: summary[k] for k in ("rps", "p50_ms", "p99_ms", "per_cpu_s", "errors", "requests")} == {
        "rps": 200.0, "p50_ms": 2.0, "p99_ms": 20.0, "per_cpu_s": 400.0, "errors": 3, "requests": 6000}
    assert summary["runs"] is runs
