"""Measuring commands for the benchmarks: wall and CPU time, process-tree memory, machine and load."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import pty
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Seconds between two memory samples of a measured process tree.
SAMPLE_S = 0.2


@dataclass
class Run:
    """One measured subprocess: wall time, peak memory of its process tree, outcome."""

    command: list[str]
    wall_s: float
    peak_pss_mib: float  # peak over samples of the summed PSS of the whole process tree
    peak_rss_mib: float  # same with RSS (shared pages counted once per process), at least maxrss
    maxrss_mib: float | None  # /usr/bin/time -v: largest single process (None when killed)
    returncode: int | None
    timed_out: bool
    load_before: list[float]
    load_after: list[float]
    stdout: str = ""
    stderr_tail: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Timed:
    """One finished subprocess: wall and CPU seconds, exit status and captured output."""

    wall_s: float
    cpu_s: float  # user + system of the process and every descendant it waited for
    returncode: int
    stdout: str
    stderr: str


def process_tree(root: int) -> list[int]:
    """``root`` and all its living descendants.

    Parameters
    ----------
    root : int
        Process id.

    Returns
    -------
    list of int
        Process ids, ``root`` first; empty when ``root`` is gone.
    """
    import psutil

    try:
        return [root, *(child.pid for child in psutil.Process(root).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def rollup(pid: int | str = "self") -> dict[str, int]:
    """The memory totals of ``/proc/<pid>/smaps_rollup``, in bytes.

    Parameters
    ----------
    pid : int or "self"
        Process id.

    Returns
    -------
    dict of str to int
        ``Rss``, ``Pss``, ``Private_Dirty``, ``Anonymous``, ... in bytes.
    """
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return {name: int(kib) * 1024 for name, kib in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}


def anonymous_bytes(pid: int | str = "self") -> int:
    """Anonymous memory (heap, Python objects) of a process, in bytes."""
    return rollup(pid)["Anonymous"]


def tree_memory_kib(root: int) -> tuple[int, int]:
    """Summed (RSS, PSS) in KiB of a process tree, from ``/proc/<pid>/smaps_rollup``.

    Parameters
    ----------
    root : int
        Process id of the tree's root.

    Returns
    -------
    tuple of int
        RSS and PSS in KiB; processes that end while being read count as 0.
    """
    rss = pss = 0
    for pid in process_tree(root):
        try:
            totals = rollup(pid)
        except OSError:
            continue
        rss += totals.get("Rss", 0) // 1024
        pss += totals.get("Pss", 0) // 1024
    return rss, pss


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a running process and its current descendants.

    Parameters
    ----------
    root : int
        Process id, e.g. a server's master process.

    Returns
    -------
    float
        Processes that end while being read count as 0.
    """
    import psutil

    total = 0.0
    for pid in process_tree(root):
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_timed(argv: list[str], **kwargs: Any) -> Timed:
    """Run ``argv`` to its end, capturing its output; measure wall and CPU time.

    CPU time (user + system of the process, its threads and the descendants it waits for)
    depends less on the other jobs of a shared machine than wall time does.

    Parameters
    ----------
    argv : list of str
        The program and its arguments.
    **kwargs
        Passed to :func:`subprocess.run` (e.g. ``cwd``, ``env``).

    Returns
    -------
    Timed
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Timed(wall_s=round(wall, 3), cpu_s=round(cpu, 3), returncode=proc.returncode,
                 stdout=proc.stdout, stderr=proc.stderr)


def measure(command: list[str], timeout: float, echo: bool = False) -> Run:
    """Run ``command`` under ``/usr/bin/time -v`` in a new session and measure it.

    Parameters
    ----------
    command : list of str
        The program and its arguments.
    timeout : float
        Seconds before the whole process group is killed (the run is then marked timed out).
    echo : bool
        Copy the child's stderr (a pseudo-terminal, so progress bars render) to ours.

    Returns
    -------
    Run
    """
    load = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        time_file, out_file = Path(tmp, "time.txt"), Path(tmp, "stdout.txt")
        master, slave = pty.openpty()
        tail = bytearray()

        def read_stderr() -> None:
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                tail.extend(chunk)
                del tail[:-8192]
                if echo:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()

        with open(out_file, "wb") as out:
            start = time.perf_counter()
            proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(time_file), *command],
                                    stdout=out, stderr=slave, start_new_session=True)
        os.close(slave)
        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        peak_rss = peak_pss = 0
        timed_out = False
        while proc.poll() is None:
            rss, pss = tree_memory_kib(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            if time.perf_counter() - start > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                break
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - start
        reader.join(5)
        os.close(master)
        report = time_file.read_text() if time_file.exists() else ""
        maxrss = next((int(line.split(":")[1]) / 1024 for line in report.splitlines()
                       if "Maximum resident set size" in line), None)
        return Run(
            command=command, wall_s=round(wall, 3), peak_pss_mib=round(peak_pss / 1024, 1),
            peak_rss_mib=round(max(peak_rss / 1024, maxrss or 0), 1), maxrss_mib=maxrss and round(maxrss, 1),
            returncode=None if timed_out else proc.returncode, timed_out=timed_out,
            load_before=[round(x, 2) for x in load], load_after=[round(x, 2) for x in os.getloadavg()],
            stdout=out_file.read_text(errors="replace"),
            stderr_tail=tail.decode(errors="replace")[-2000:],
        )


def wait_for_load(max_load: float | None, max_wait: float) -> None:
    """Sleep until the 1-minute load average is below ``max_load`` (at most ``max_wait`` s).

    Parameters
    ----------
    max_load : float or None
        Load average to wait for; None returns at once.
    max_wait : float
        Longest wait, seconds.
    """
    deadline = time.monotonic() + max_wait
    while max_load is not None and os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)


def machine(repo: Path = REPO) -> dict:
    """Machine, library and checkout details recorded with every result.

    Parameters
    ----------
    repo : Path
        The checkout whose HEAD and uncommitted ``training/`` files are recorded.

    Returns
    -------
    dict
    """
    import numpy
    import scipy
    import sklearn
    import threadpoolctl

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    git = ["git", "-C", str(repo)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "training"], capture_output=True,
                           text=True).stdout
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "mem_gib": round(int(mem) / 2**20, 1),
        "python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "blas": [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                 for i in threadpoolctl.threadpool_info()],
        "git_head": head.strip(), "training_uncommitted": dirty.splitlines(),
    }


def last_line(text: str) -> str:
    """The last non-blank line or progress-bar frame of terminal output, without ANSI codes.

    Parameters
    ----------
    text : str
        Captured output, possibly with carriage-return frames and colour codes.

    Returns
    -------
    str
        Stripped; empty when there is none.
    """
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "\n").splitlines()
    return next((f.strip() for f in reversed(frames) if f.strip()), "")


def last_json_line(text: str, what: str = "output") -> Any:
    """Parse the last non-blank line of ``text`` as JSON (a probe's result after its logging).

    Parameters
    ----------
    text : str
        Captured standard output.
    what : str
        Names the output in the error.

    Returns
    -------
    Any
        The decoded value.

    Raises
    ------
    ValueError
        When there is no line or the last one is not JSON.
    """
    line = last_line(text)
    if not line:
        raise ValueError(f"{what}: no output to parse")
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: last line is not JSON ({exc.msg}): {line[:200]!r}") from None
