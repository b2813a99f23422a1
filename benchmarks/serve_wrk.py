"""wrk runs of the serving benchmark: Lua request scripts, running wrk, parsing its report, medians."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.serve_control import Server


WRK_GET = """local paths = {%s}
local i = 0
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
"""
WRK_CHECK = """
local threads = {}
checked, mismatched = 0, 0
setup = function(thread) table.insert(threads, thread) end
response = function(status, headers, body)
  checked = checked + 1
  local version = headers["X-Model-Version"]
  if status ~= 200 or version == nil or not string.find(body, '"model_version":"' .. version .. '"', 1, true) then
    mismatched = mismatched + 1
  end
end
done = function(summary, latency, requests)
  local c, m = 0, 0
  for _, thread in ipairs(threads) do c = c + thread:get("checked"); m = m + thread:get("mismatched") end
  io.write(string.format("checked %d mismatched %d\\n", c, m))
end
"""
WRK_POST = """local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format("POST", "/related", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal."""
    return json.dumps(text)  # JSON string escapes are valid Lua for ASCII text


def parse_wrk(output: str) -> dict[str, Any]:
    """Extract req/s, latency percentiles, request count and errors from `wrk --latency` output."""
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    result: dict[str, Any] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
                              "requests": int(re.search(r"(\d+) requests in", output).group(1))}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s|m)\b", output)
        result[f"p{pct}_ms"] = seconds(*match.groups()) * 1000
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(map(int, socket_errors.groups())) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    result["errors"] = result["socket_errors"] + result["non_2xx"]
    checked = re.search(r"checked (\d+) mismatched (\d+)", output)
    if checked:
        result["checked"], result["mismatched"] = int(checked.group(1)), int(checked.group(2))
    return result


def wrk(port: int, script: Path, connections: int, duration: float) -> dict[str, Any]:
    """Run wrk (1 thread, --latency) with ``script`` against 127.0.0.1:``port``; return the parsed report."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(script),
            f"http://127.0.0.1:{port}"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    output = done.stdout
    return {**parse_wrk(output), "command": " ".join(argv[:-2] + [script.name, argv[-1]])}


def measure_run(server: Server, script: Path, connections: int, duration: float) -> dict[str, Any]:
    """One wrk run plus the CPU time the server spent on it (robust to other load on the machine)."""
    before = server.cpu_seconds()
    result = wrk(server.port, script, connections, duration)
    cpu = server.cpu_seconds() - before
    return {**result, "server_cpu_s": cpu, "per_cpu_s": result["requests"] / cpu if cpu > 0 else 0.0}


def median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of req/s, p50, p99 and requests per CPU-second over ``runs``; summed errors and requests."""
    keys = ("rps", "p50_ms", "p99_ms", "per_cpu_s")
    return {**{key: statistics.median(r[key] for r in runs) for key in keys},
            "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs),
            "runs": runs}
