"""Tests for benchmarks/measure.py: process-tree memory and CPU, timed runs, output parsing, machine facts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks import measure

MB50 = 50_000_000
# a child holding 50 MB for a while, so the tree is sampled while it lives
HOLD = "import time; x = bytearray(50_000_000); time.sleep({s})"
# a parent holding 50 MB that starts a child holding 50 MB too: 100 MB in the tree, 50 MB per process
TREE = ("import subprocess, sys, time; x = bytearray(50_000_000); "
        "subprocess.run([sys.executable, '-c', {child!r}])")
# burns {s} s of CPU
BURN = "import time\nwhile time.process_time() < {s}: pass\n"


def test_measure_reports_peak_memory_of_a_short_child():
    run = measure.measure([sys.executable, "-c", "x = bytearray(50_000_000)"], timeout=30)
    assert (run.returncode, run.timed_out) == (0, False)
    assert run.peak_rss_mib * 2**20 >= MB50
    assert run.maxrss_mib is not None and run.maxrss_mib * 2**20 >= MB50
    assert 0 < run.wall_s < 30 and len(run.load_before) == len(run.load_after) == 3


def test_measure_sums_the_whole_process_tree():
    child = HOLD.format(s=0.8)
    run = measure.measure([sys.executable, "-c", TREE.format(child=child)], timeout=30)
    assert run.returncode == 0
    assert run.peak_rss_mib * 2**20 >= 2 * MB50  # parent and child sampled together
    assert run.peak_pss_mib * 2**20 >= 2 * MB50 * 0.9
    assert run.maxrss_mib * 2**20 < 2 * MB50  # /usr/bin/time sees one process at a time


def test_measure_kills_the_group_on_timeout_and_keeps_output():
    code = "import sys, time; print('out'); print('err', file=sys.stderr, flush=True); time.sleep(60)"
    started = time.perf_counter()
    run = measure.measure([sys.executable, "-u", "-c", code], timeout=1.5)  # time to start under load
    assert run.timed_out and run.returncode is None and run.maxrss_mib is None
    assert 1.5 <= run.wall_s and time.perf_counter() - started < 15
    assert run.stdout == "out\n" and "err" in run.stderr_tail


def test_run_timed_counts_the_cpu_of_descendants():
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN.format(s=0.3)!r}]); print('done')"
    timed = measure.run_timed([sys.executable, "-c", code])
    assert (timed.returncode, timed.stdout, timed.stderr) == (0, "done\n", "")
    assert timed.cpu_s >= 0.3
    assert timed.wall_s >= timed.cpu_s * 0.5
    failed = measure.run_timed([sys.executable, "-c", "import sys; sys.exit('bad input')"])
    assert (failed.returncode, failed.stderr) == (1, "bad input\n")


def test_tree_cpu_and_memory_of_a_running_tree():
    child = BURN.format(s=0.3) + "x = bytearray(50_000_000)\nprint('ready', flush=True)\ntime.sleep(30)\n"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    with subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline() == "ready\n"
            tree = measure.process_tree(proc.pid)
            assert tree[0] == proc.pid and len(tree) == 2
            assert measure.tree_cpu_seconds(proc.pid) >= 0.3
            rss_kib, pss_kib = measure.tree_memory_kib(proc.pid)
            assert rss_kib * 1024 >= MB50 and 0 < pss_kib <= rss_kib
        finally:
            for pid in reversed(measure.process_tree(proc.pid)):
                os.kill(pid, signal.SIGKILL)
    assert measure.process_tree(proc.pid) == [] and measure.tree_memory_kib(proc.pid) == (0, 0)


def test_rollup_of_this_process():
    before = measure.rollup()
    assert {"Rss", "Pss", "Private_Dirty", "Anonymous"} <= set(before)
    assert all(value % 1024 == 0 for value in before.values())
    block = bytearray(MB50)
    grown = measure.anonymous_bytes(os.getpid()) - before["Anonymous"]
    del block
    assert grown >= MB50 * 0.9


@pytest.mark.parametrize(("text", "line"), [
    ("first\nlast\n\n  \n", "last"),
    ("train  10%|#  | 1/10\rtrain 100%|###| 10/10\r\n", "train 100%|###| 10/10"),
    ("\x1b[31mError:\x1b[0m disk full\n\x1b[?25h", "Error: disk full"),
    ("", ""),
    (" \r\n\r ", ""),
])
def test_last_line(text, line):
    assert measure.last_line(text) == line


def test_last_json_line():
    assert measure.last_json_line('warning: noise\n{"a": [1, 2]}\n\n') == {"a": [1, 2]}
    with pytest.raises(ValueError, match=r"probe: last line is not JSON .*'done'"):
        measure.last_json_line('{"a": 1}\ndone\n', "probe")
    with pytest.raises(ValueError, match="probe: no output"):
        measure.last_json_line("\n", "probe")


def test_wait_for_load_returns_by_the_deadline():
    started = time.monotonic()
    measure.wait_for_load(None, 60)  # no limit
    measure.wait_for_load(float("inf"), 60)  # always below
    measure.wait_for_load(-1.0, 0)  # never below, no time to wait
    assert time.monotonic() - started < 1


def test_machine_describes_this_checkout():
    facts = measure.machine()
    head = subprocess.run(["git", "-C", str(measure.REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert facts["git_head"] == head
    assert facts["nproc"] == len(os.sched_getaffinity(0)) and facts["mem_gib"] > 0
    assert facts["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"cpu", "numpy", "scipy", "scikit-learn", "blas", "training_uncommitted", "date"} <= set(facts)
