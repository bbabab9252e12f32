#!/usr/bin/env python3
"""Hopper's benchmark: load generators side by side against one local nginx.

    python3 bench/run.py [--quick] [--repeats N] [--duration S] [--users N] [--tools a,b]

Every generator runs the same load (N users or connections, no wait, GET /fast) against the
same nginx on 127.0.0.1, one after the other, interleaved and repeated. Each run is a child
process measured with os.wait4: user + sys CPU seconds of the generator (and its children),
peak RSS and wall time. The requests come from each tool's own output. The headline number
is requests per CPU-second of the generator, requests / (user + sys CPU s), because the target
and the generator share the machine's cores: requests per second measures the machine, not
the generator.

Results go to bench/results/latest.json (with every run's raw output in bench/results/raw/)
and, unless --quick, to the marked section of docs/benchmarks.md.

Python 3 standard library only. It installs what it needs when it is missing: nginx-light
and wrk from Debian (apt-get), Locust in a virtualenv at bench/.venv (pip), and Hopper's
benchmark program (cargo build --release).

Growing it: a load generator is a Tool (how to install it, the command, the parser of its
output) in TOOLS; a workload is a Scenario in SCENARIOS. The measurement, the statistics and
the report do not know about either.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV = BENCH / ".venv"
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "benchmarks.md"
MARK_START = "<!-- results:start -->"
MARK_END = "<!-- results:end -->"
LOCUST_VERSION = "2.47.0"
REFERENCE_TOOL = "wrk"
# Seconds a run may take beyond its duration (startup, shutdown) before it is killed.
GRACE_S = 45.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Parsing the tools' output
# ---------------------------------------------------------------------------------------------


class ParseError(Exception):
    """A tool's output did not have what the benchmark reads from it."""

    def __init__(self, tool: str, message: str, text: str = ""):
        tail = "\n".join(text.strip().splitlines()[-8:])
        detail = f"\n--- last lines of {tool}'s output ---\n{tail}" if tail else ""
        super().__init__(f"could not parse {tool}'s output: {message}{detail}")
        self.tool = tool


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _wrk_time_ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS_MS[unit]


def parse_wrk(text: str) -> dict:
    """wrk 4's report (run with --latency): requests, errors, req/s and latency percentiles.

    Failures are non-2xx/3xx responses plus socket errors (connect, read, write, timeout);
    wrk counts the former among its requests and not the latter.
    """
    tool = "wrk"
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", text, re.M)
    if not m:
        raise ParseError(tool, 'no "N requests in T" line', text)
    requests = int(m.group(1))
    duration_s = _wrk_time_ms(m.group(2), m.group(3)) / 1000.0
    m = re.search(r"^Requests/sec:\s+([\d.]+)\s*$", text, re.M)
    if not m:
        raise ParseError(tool, 'no "Requests/sec:" line', text)
    rps = float(m.group(1))
    non_2xx = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        non_2xx = int(m.group(1))
    socket_errors = 0
    m = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if m:
        socket_errors = sum(int(g) for g in m.groups())
    dist = text.split("Latency Distribution", 1)
    if len(dist) != 2:
        raise ParseError(tool, 'no "Latency Distribution" (was --latency given?)', text)
    pct = {
        float(p): _wrk_time_ms(v, u)
        for p, v, u in re.findall(r"^\s*([\d.]+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", dist[1], re.M)
    }
    if 50.0 not in pct or 99.0 not in pct:
        raise ParseError(tool, "no 50% and 99% in the latency distribution", text)
    return {
        "requests": requests,
        "failures": non_2xx + socket_errors,
        "non_2xx": non_2xx,
        "socket_errors": socket_errors,
        "rps": rps,
        "duration_s": duration_s,
        "p50_ms": pct[50.0],
        "p99_ms": pct[99.0],
        "percentile_source": "wrk --latency",
    }


_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d ")
_SEPARATOR = re.compile(r"^-{8}\|")


def _table_rows(lines: list[str], header_index: int, tool: str, table: str, text: str):
    """(header tokens, Aggregated-row tokens) of the Locust-style table whose header line is
    at header_index: header, separator, entry rows, separator, Aggregated row."""
    header = lines[header_index]
    seps = 0
    for line in lines[header_index + 1 :]:
        if _LOG_LINE.match(line):
            continue  # a log line from another thread, written between table lines
        if _SEPARATOR.match(line):
            seps += 1
            continue
        if seps == 2:
            tokens = line.split()
            if not tokens or tokens[0] != "Aggregated":
                raise ParseError(tool, f"the {table} table has no Aggregated row", text)
            return header, line
        if seps > 2 or (seps < 2 and not line.strip()):
            break
    raise ParseError(tool, f"the {table} table is cut short", text)


def _last_index(lines: list[str], pred) -> Optional[int]:
    found = None
    for i, line in enumerate(lines):
        if pred(line):
            found = i
    return found


def _percentile_columns(header: str, row: str, tool: str, table: str, text: str) -> dict:
    labels = header.split()
    if labels[:2] != ["Type", "Name"] or labels[-2:] != ["#", "reqs"]:
        raise ParseError(tool, f"unexpected {table} table header: {header.strip()!r}", text)
    labels = labels[2:-2] + ["# reqs"]
    values = row.split()[1:]
    if len(values) != len(labels):
        raise ParseError(
            tool, f"the {table} Aggregated row has {len(values)} columns, not {len(labels)}", text
        )
    return dict(zip(labels, values))


def parse_locust_style(text: str, tool: str = "locust") -> dict:
    """The final summary that Locust (and Hopper, which copies it) prints: the Aggregated row of
    the request table (requests, failures, req/s) and of the approximated percentile table
    (p50, p99 in whole ms). The last summary in the output counts."""
    lines = text.splitlines()
    i = _last_index(lines, lambda l: l.startswith("Type ") and "# reqs" in l and "# fails" in l)
    if i is None:
        raise ParseError(tool, "no request statistics table", text)
    _, row = _table_rows(lines, i, tool, "request statistics", text)
    m = re.match(
        r"^\s*Aggregated\s+(\d+)\s+(\d+)\(([\d.]+)%\)\s*\|.*\|\s*([\d.]+)\s+([\d.]+)\s*$", row
    )
    if not m:
        raise ParseError(tool, f"unexpected Aggregated row: {row.strip()!r}", text)
    out = {
        "requests": int(m.group(1)),
        "failures": int(m.group(2)),
        "rps": float(m.group(4)),
    }
    j = _last_index(lines, lambda l: l.strip() == "Response time percentiles (approximated)")
    if j is None or j + 1 >= len(lines):
        raise ParseError(tool, "no approximated percentile table", text)
    header, row = _table_rows(lines, j + 1, tool, "approximated percentile", text)
    cols = _percentile_columns(header, row, tool, "approximated percentile", text)
    try:
        out["p50_ms"] = float(cols["50%"])
        out["p99_ms"] = float(cols["99%"])
    except (KeyError, ValueError) as e:
        raise ParseError(tool, f"no numeric 50%/99% columns ({e})", text) from None
    out["percentile_source"] = "approximated (Locust's rounded buckets)"
    return out


def parse_locust(text: str) -> dict:
    return parse_locust_style(text, "locust")


def parse_hopper(text: str) -> dict:
    """Hopper's final summary: Locust's tables, plus its precise (HDR) percentile table, whose
    p50/p99 (ms, three significant digits) are the ones reported."""
    tool = "hopper"
    out = parse_locust_style(text, tool)
    lines = text.splitlines()
    j = _last_index(lines, lambda l: l.strip().startswith("Response time percentiles (precise"))
    if j is None or j + 1 >= len(lines):
        raise ParseError(tool, "no precise (HDR) percentile table", text)
    header, row = _table_rows(lines, j + 1, tool, "precise percentile", text)
    cols = _percentile_columns(header, row, tool, "precise percentile", text)
    try:
        out["p50_approx_ms"], out["p99_approx_ms"] = out["p50_ms"], out["p99_ms"]
        out["p50_ms"] = float(cols["p50"])
        out["p99_ms"] = float(cols["p99"])
    except (KeyError, ValueError) as e:
        raise ParseError(tool, f"no numeric p50/p99 in the precise table ({e})", text) from None
    out["percentile_source"] = "precise (HDR)"
    return out


# ---------------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------------


def median(values) -> float:
    """The median; the mean of the two middle values for an even count."""
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("median of no values")
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2.0


def per_cpu_second(requests: float, cpu_s: float) -> float:
    """Requests per CPU-second of the generator."""
    if cpu_s <= 0:
        raise ValueError(f"no CPU time measured ({cpu_s} s)")
    return requests / cpu_s


def ratio(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    if value is None or not reference:
        return None
    return value / reference


# Per-run numbers summarized as medians over the repeats.
MEDIAN_FIELDS = (
    "requests", "failures", "rps", "req_per_cpu_s", "cpu_s", "user_s", "sys_s", "wall_s",
    "p50_ms", "p99_ms", "peak_rss_kib", "user_us_per_req", "sys_us_per_req",
)


def summarize(runs: list[dict], reference: str = REFERENCE_TOOL) -> dict:
    """Medians per tool over its successful runs, and each tool's ratio to the reference tool's
    requests per CPU-second: of the medians ("ratio"), and the median of the ratios of runs in
    the same repeat ("ratio_paired")."""
    by_tool: dict[str, list[dict]] = {}
    for r in runs:
        if r.get("ok"):
            by_tool.setdefault(r["tool"], []).append(r)
    summary: dict[str, dict] = {}
    for tool, rs in by_tool.items():
        s = {"runs": len(rs)}
        for f in MEDIAN_FIELDS:
            vals = [r[f] for r in rs if r.get(f) is not None]
            s[f] = median(vals) if vals else None
        per = [r["req_per_cpu_s"] for r in rs]
        s["req_per_cpu_s_min"], s["req_per_cpu_s_max"] = min(per), max(per)
        summary[tool] = s
    ref = summary.get(reference, {}).get("req_per_cpu_s")
    ref_by_repeat = {r["repeat"]: r["req_per_cpu_s"] for r in by_tool.get(reference, [])}
    for tool, s in summary.items():
        s["ratio"] = ratio(s["req_per_cpu_s"], ref)
        paired = [
            r["req_per_cpu_s"] / ref_by_repeat[r["repeat"]]
            for r in by_tool[tool]
            if r["repeat"] in ref_by_repeat
        ]
        s["ratio_paired"] = median(paired) if paired else None
    return summary


def run_metrics(parsed: dict, usage: dict) -> dict:
    """A run's derived numbers from the tool's parsed output and the process's rusage."""
    requests = parsed["requests"]
    cpu = usage["user_s"] + usage["sys_s"]
    return {
        "cpu_s": cpu,
        "req_per_cpu_s": per_cpu_second(requests, cpu),
        "user_us_per_req": usage["user_s"] / requests * 1e6 if requests else None,
        "sys_us_per_req": usage["sys_s"] / requests * 1e6 if requests else None,
    }


# ---------------------------------------------------------------------------------------------
# Tools and scenarios
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a tool's command needs to know about this run."""

    url: str  # the target's base URL, no trailing slash
    path: str  # the scenario's request path
    users: int
    duration: int  # seconds
    workdir: Path  # a private temporary directory
    skip_build: bool = False


@dataclass
class Tool:
    name: str
    label: str  # for the report
    prepare: Callable[[Context], None]  # install or build it if missing
    command: Callable[[Context], list[str]]
    parse: Callable[[str], dict]
    ok_returncodes: tuple = (0,)  # exit codes of a run whose output counts


def _find_bin(name: str) -> Optional[str]:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin:/sbin"
    return shutil.which(name, path=path)


_apt_updated = False


def apt_install(binary: str, package: str) -> None:
    """Installs a Debian package when its binary is missing (apt-get update once first)."""
    global _apt_updated
    if _find_bin(binary):
        return
    log(f"{binary} is missing: installing {package} from Debian")
    if not _apt_updated:
        subprocess.run(["apt-get", "update"], check=True)
        _apt_updated = True
    subprocess.run(["apt-get", "install", "-y", package], check=True)
    if not _find_bin(binary):
        sys.exit(f"error: {package} was installed but {binary} is still not found")


def prepare_wrk(ctx: Context) -> None:
    apt_install("wrk", "wrk")


def wrk_command(ctx: Context) -> list[str]:
    return [
        _find_bin("wrk") or "wrk", "-t2", f"-c{ctx.users}", f"-d{ctx.duration}s", "--latency",
        ctx.url + ctx.path,
    ]


def hopper_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "release" / "examples" / "throughput"


def prepare_hopper(ctx: Context) -> None:
    if ctx.skip_build and hopper_binary().exists():
        return
    cmd = ["cargo", "build", "--release", "-p", "hopper", "--example", "throughput"]
    log("building Hopper: " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)


def hopper_command(ctx: Context) -> list[str]:
    return [
        str(hopper_binary()), "-H", ctx.url, "--headless", "-u", str(ctx.users),
        "-r", str(ctx.users), "-t", f"{ctx.duration}s", "--only-summary",
    ]


LOCUSTFILE = '''\
"""Generated by bench/run.py: one FastHttpUser, no wait, GET {path}."""
from locust import FastHttpUser, task


class Throughput(FastHttpUser):
    @task
    def fast(self):
        self.client.get("{path}")
'''


def locust_version() -> Optional[str]:
    py = VENV / "bin" / "python"
    if not py.exists():
        return None
    r = subprocess.run(
        [str(py), "-c", "import locust; print(locust.__version__)"],
        capture_output=True, text=True,
    )
    return r.stdout.strip() if r.returncode == 0 else None


def prepare_locust(ctx: Context) -> None:
    if locust_version() != LOCUST_VERSION:
        log(f"installing Locust {LOCUST_VERSION} in {VENV.relative_to(ROOT)}")
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", f"locust=={LOCUST_VERSION}"],
            check=True,
        )
    (ctx.workdir / "locustfile.py").write_text(LOCUSTFILE.format(path=ctx.path))


def locust_command(ctx: Context) -> list[str]:
    return [
        str(VENV / "bin" / "locust"), "-f", str(ctx.workdir / "locustfile.py"), "--headless",
        "-u", str(ctx.users), "-r", str(ctx.users), "-t", f"{ctx.duration}s", "--only-summary",
        "-H", ctx.url,
    ]


def describe_command(tool: "Tool", ctx: Context) -> str:
    """The tool's command as the report shows it: paths relative, the target as PORT."""
    s = " ".join(shlex.quote(a) for a in tool.command(ctx))
    for prefix in (str(ctx.workdir) + "/", str(ROOT) + "/"):
        s = s.replace(prefix, "")
    return s.replace(ctx.url, "http://127.0.0.1:PORT")


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool("wrk", "wrk 4.1", prepare_wrk, wrk_command, parse_wrk),
        # Hopper and Locust exit with 1 when a request failed; their summary still counts.
        Tool("hopper", "Hopper", prepare_hopper, hopper_command, parse_hopper,
             ok_returncodes=(0, 1)),
        Tool("locust-fast", f"Locust {LOCUST_VERSION} FastHttpUser", prepare_locust,
             locust_command, parse_locust, ok_returncodes=(0, 1)),
    ]
}


@dataclass
class Scenario:
    name: str
    description: str
    path: str
    tools: tuple  # names in TOOLS; the first is the reference for ratios


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "throughput",
            "N users (connections) with no wait, each repeating GET /fast (2-byte body) "
            "on one keep-alive connection",
            "/fast",
            ("wrk", "hopper", "locust-fast"),
        ),
    ]
}


# ---------------------------------------------------------------------------------------------
# Processes: children measured with wait4, all of them killed at the end
# ---------------------------------------------------------------------------------------------

_children: dict[int, subprocess.Popen] = {}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _signal_group(pid: int, sig: int) -> None:
    # Each child leads its own process group (start_new_session), so this reaches the child
    # and anything it started, and nothing else.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_child(pid: int, first: int = signal.SIGTERM, wait_s: float = 5.0) -> None:
    """Signals a child we started, then kills it if it has not exited within wait_s, and reaps
    it (unless someone else is already waiting for it)."""
    proc = _children.get(pid)
    if proc is None:
        return
    _signal_group(pid, first)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    else:
        _signal_group(pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    _children.pop(pid, None)


def stop_all_children() -> None:
    # Newest first: a generator still running stops before the target it loads.
    for pid in reversed(list(_children)):
        log(f"stopping child {pid}")
        stop_child(pid)


def spawn(cmd: list[str], out, env=None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        env=env, start_new_session=True,
    )
    _children[proc.pid] = proc
    return proc


def vm_hwm_kib(pid: int) -> Optional[int]:
    """The peak resident set size of a process's current program (VmHWM), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_measured(cmd: list[str], timeout_s: float, out_path: Path) -> dict:
    """Runs cmd to its end (killing it after timeout_s) and measures it with wait4: wall time,
    user and sys CPU seconds of the process and of the children it waited for.

    Peak RSS: wait4's ru_maxrss would include the memory of this Python process, which the
    child was forked from (Linux keeps the pre-exec high-water mark), so the peak RSS reported
    is the program's own VmHWM, sampled every 0.1 s while it runs; ru_maxrss is kept as well.
    """
    with open(out_path, "wb") as out:
        t0 = time.monotonic()
        proc = spawn(cmd, out)
        timed_out = threading.Event()
        done = threading.Event()
        hwm = [0]

        def kill_on_timeout():
            timed_out.set()
            _signal_group(proc.pid, signal.SIGTERM)
            if not done.wait(5):
                _signal_group(proc.pid, signal.SIGKILL)

        def sample_rss():
            while not done.wait(0.1):
                v = vm_hwm_kib(proc.pid)
                if v is not None and not done.is_set():
                    hwm[0] = max(hwm[0], v)

        timer = threading.Timer(timeout_s, kill_on_timeout)
        timer.daemon = True
        timer.start()
        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            done.set()
            timer.cancel()
        wall = time.monotonic() - t0
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        _children.pop(proc.pid, None)
    return {
        "returncode": proc.returncode,
        "timed_out": timed_out.is_set(),
        "wall_s": wall,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "peak_rss_kib": hwm[0] or None,
        "ru_maxrss_kib": ru.ru_maxrss,  # Linux: KiB, inflated by the parent's (see above)
        "output": out_path.read_text(errors="replace"),
    }


# ---------------------------------------------------------------------------------------------
# The machine: load, busy CPU, other processes' CPU
# ---------------------------------------------------------------------------------------------


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot (not idle, not iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = f[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def process_cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def process_table() -> dict:
    """{(pid, start time): CPU ticks (user + sys) of the process} for every process, kernel
    threads included."""
    table = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # The start time tells a reused pid apart.
        table[(int(d.name), int(f[19]))] = int(f[11]) + int(f[12])
    return table


def others_cpu_s(before: dict, after: dict, exclude: set) -> float:
    """CPU seconds that processes other than `exclude` (pids) and still alive at the end used
    between two process tables: a lower bound, as processes that exited in between are missed
    (their reaped time would show in their parents' totals but for their whole life, not this
    window's)."""
    ticks = sum(t - before.get(key, 0) for key, t in after.items() if key[0] not in exclude)
    return max(ticks, 0) / CLK_TCK


def child_pids(parent: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            pids.append(int(d.name))
    return pids


def _first_line(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine_info() -> dict:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    # Changes to what the benchmark program is built from (not to tests or docs).
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--",
         "Cargo.toml", "Cargo.lock", "examples", ":(glob)crates/*/src/**",
         ":(glob)crates/*/Cargo.toml"],
        capture_output=True, text=True,
    ).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "rustc": _first_line(["rustc", "-V"]),
        "hopper_commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


# ---------------------------------------------------------------------------------------------
# The target: a private nginx on 127.0.0.1
# ---------------------------------------------------------------------------------------------

NGINX_CONF = """\
# Generated by bench/run.py: the benchmark's target.
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /fast {{ return 200 "ok"; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx with a private config in a temp dir, on a free port of 127.0.0.1, stopped by its
    PID."""

    def __init__(self, workdir: Path):
        self.dir = workdir / "nginx"
        self.dir.mkdir()
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.workers: list[int] = []

    def start(self) -> None:
        binary = _find_bin("nginx")
        for _attempt in range(5):
            self.port = free_port()
            conf = self.dir / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port))
            out = open(self.dir / "stdout.log", "wb")
            self.proc = spawn(
                [binary, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")],
                out,
            )
            out.close()
            if self._wait_ready():
                self.workers = child_pids(self.proc.pid)
                log(f"nginx {self.proc.pid} (workers {self.workers}) on {self.url}")
                return
            stop_child(self.proc.pid)
        errors = (self.dir / "error.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"nginx did not start; its error log:\n{errors}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/fast", timeout=2) as r:
                    if r.status == 200 and r.read() == b"ok":
                        return True
            except OSError:
                time.sleep(0.1)
        return False

    def cpu_s(self) -> float:
        return process_cpu_s([self.proc.pid, *self.workers]) if self.proc else 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc.pid, first=signal.SIGTERM)
            log(f"nginx {self.proc.pid} stopped")
            self.proc = None


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def run_one(tool: Tool, ctx: Context, nginx: Nginx, repeat: int, order: int, raw: Path) -> dict:
    cmd = tool.command(ctx)
    rec = {"repeat": repeat, "order": order, "tool": tool.name, "command": cmd, "ok": False}
    rec["loadavg_before"] = loadavg()
    procs0, busy0, nginx0 = process_table(), machine_busy_s(), nginx.cpu_s()
    m = run_measured(cmd, ctx.duration + GRACE_S, raw / f"{repeat}-{tool.name}.log")
    busy1, nginx1, procs1 = machine_busy_s(), nginx.cpu_s(), process_table()
    output = m.pop("output")
    rec.update(m)
    # Where the rest of the machine's busy CPU went during the run: nginx, and the rest of
    # the machine (other processes, the noise of a shared machine, plus kernel work charged to
    # no process: interrupts and softirqs that ran while a core was otherwise idle).
    rec["machine_busy_cpu_s"] = busy1 - busy0
    rec["nginx_cpu_s"] = nginx1 - nginx0
    rec["rest_cpu_s"] = rec["machine_busy_cpu_s"] - rec["nginx_cpu_s"] - m["user_s"] - m["sys_s"]
    exclude = {os.getpid(), nginx.proc.pid, *nginx.workers}
    rec["other_processes_cpu_s_lower_bound"] = others_cpu_s(procs0, procs1, exclude)
    try:
        if m["timed_out"]:
            raise RuntimeError(f"{tool.name} did not finish within {ctx.duration + GRACE_S:.0f} s")
        if m["returncode"] not in tool.ok_returncodes:
            raise RuntimeError(f"{tool.name} exited with {m['returncode']}")
        parsed = tool.parse(output)
        rec.update(parsed)
        rec.update(run_metrics(parsed, m))
        rec["ok"] = True
    except (ParseError, RuntimeError, ValueError) as e:
        rec["error"] = str(e)
        # A ParseError already shows the end of the output.
        tail = "" if isinstance(e, ParseError) else "\n" + "\n".join(output.strip().splitlines()[-10:])
        log(f"{tool.name} run failed: {e}{tail}")
    return rec


def fmt_int(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:,.0f}"


def fmt_k(x: Optional[float]) -> str:
    return "–" if x is None else f"{x / 1000:.1f}k"


def fmt_mib(kib: Optional[float]) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f}"


def fmt_ms(x: Optional[float]) -> str:
    if x is None:
        return "–"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def render_results(report: dict) -> str:
    """The markdown of the marked results section of docs/benchmarks.md."""
    cfg, mach, summary, runs = report["config"], report["machine"], report["summary"], report["runs"]
    tools = [TOOLS[t] for t in cfg["tools"]]
    lines = [
        f"Measured {mach['date']} with `{report['command']}`: {cfg['repeats']} repeat(s) of "
        f"{cfg['duration']} s per tool, {cfg['users']} users, interleaved (the order rotates "
        f"each repeat); medians over the repeats. vs wrk: the ratio of the medians of requests "
        f"per CPU-s (in brackets: the median of the ratios to wrk's run of the same repeat).",
        "",
        "| Generator | Requests | Req/s | **Req per CPU-s** (min–max) | vs wrk (paired) "
        "| CPU s (user + sys) "
        "| Wall s | p50 / p99 ms | Peak RSS MiB | Failures |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for t in tools:
        s = summary.get(t.name)
        if not s:
            lines.append(f"| {t.label} | failed | | | | | | | | |")
            continue
        src = " (HDR)" if t.name == "hopper" else ""
        vs = "–" if s["ratio"] is None else f"{s['ratio']:.2f}× ({s['ratio_paired']:.2f}×)"
        lines.append(
            f"| {t.label} | {fmt_int(s['requests'])} | {fmt_int(s['rps'])} "
            f"| **{fmt_int(s['req_per_cpu_s'])}** ({fmt_k(s['req_per_cpu_s_min'])}–"
            f"{fmt_k(s['req_per_cpu_s_max'])}) "
            f"| {vs} | {s['cpu_s']:.2f} ({s['user_s']:.2f} + {s['sys_s']:.2f}) "
            f"| {s['wall_s']:.1f} | {fmt_ms(s['p50_ms'])} / {fmt_ms(s['p99_ms'])}{src} "
            f"| {fmt_mib(s['peak_rss_kib'])} | {fmt_int(s['failures'])} |"
        )
    lines += [
        "",
        "CPU per request of the generator (medians, µs):",
        "",
        "| Generator | user | sys | total |",
        "|---|--:|--:|--:|",
    ]
    for t in tools:
        s = summary.get(t.name)
        if s and s["user_us_per_req"] is not None:
            lines.append(
                f"| {t.label} | {s['user_us_per_req']:.2f} | {s['sys_us_per_req']:.2f} "
                f"| {s['user_us_per_req'] + s['sys_us_per_req']:.2f} |"
            )
    lines += [
        "",
        "Every run, in the order run. Load avg: the 1-minute load average before the run. "
        "nginx and rest: where the machine's other busy CPU went during the run; rest is "
        "busy − generator − nginx, i.e. other processes (the noise of a shared machine) plus "
        "kernel work charged to no process (interrupts and softirqs that ran while a core was "
        "otherwise idle); within ±0.3 CPU-s it is zero (the precision of the accounting).",
        "",
        "| Repeat | Generator | Load avg | Requests | CPU s user + sys | Req per CPU-s "
        "| vs wrk (same repeat) | nginx CPU s | rest CPU s |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    ref = {r["repeat"]: r.get("req_per_cpu_s") for r in runs if r["tool"] == REFERENCE_TOOL and r["ok"]}
    for r in runs:
        label = TOOLS[r["tool"]].label
        if not r["ok"]:
            lines.append(
                f"| {r['repeat'] + 1} | {label} | {r['loadavg_before'][0]:.2f} | failed: "
                f"{r.get('error', '').splitlines()[0]} | | | | | |"
            )
            continue
        vs = ratio(r["req_per_cpu_s"], ref.get(r["repeat"]))
        lines.append(
            f"| {r['repeat'] + 1} | {label} | {r['loadavg_before'][0]:.2f} "
            f"| {fmt_int(r['requests'])} | {r['user_s']:.2f} + {r['sys_s']:.2f} "
            f"| {fmt_int(r['req_per_cpu_s'])} | {'–' if vs is None else f'{vs:.2f}×'} "
            f"| {r['nginx_cpu_s']:.2f} | {r['rest_cpu_s']:.2f} |"
        )
    lines += [
        "",
        f"Machine: {mach['nproc']} cores ({mach['cpu_model']}), {mach['memory_gib']} GiB, "
        f"{mach['os']}, kernel {mach['kernel']}; Hopper at {mach['hopper_commit']} "
        f"built by {mach['rustc']}; Python {mach['python']}.",
        "",
        "Commands (PORT is the private nginx's free port):",
        "",
        "```text",
        f"{report['command']}",
    ]
    lines += [f"  {d}" for d in report["tool_commands"].values()]
    lines += ["```"]
    return "\n".join(lines) + "\n"


def update_doc(markdown: str, doc: Path = DOC) -> None:
    """Replaces the text between the results markers of doc (adding them at the end when
    missing)."""
    block = f"{MARK_START}\n{markdown}{MARK_END}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if MARK_START in text and MARK_END in text:
        before = text.split(MARK_START, 1)[0]
        after = text.split(MARK_END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 repeat of 5 s (does not update the docs)")
    p.add_argument("--repeats", type=int, help="runs per tool (default 3; the median counts)")
    p.add_argument("--duration", type=int, help="seconds per run (default 15)")
    p.add_argument("--users", type=int, default=50, help="users / connections (default 50)")
    p.add_argument("--scenario", default="throughput", choices=sorted(SCENARIOS))
    p.add_argument("--tools", help="comma-separated subset of the scenario's tools, in order")
    p.add_argument("--cooldown", type=float, default=2.0, help="seconds of pause between runs")
    p.add_argument("--skip-build", action="store_true", help="use the built Hopper binary as is")
    p.add_argument("--from-json", metavar="PATH",
                   help="run nothing: render the results of a saved latest.json (and update "
                   "the docs with them unless --no-docs)")
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None,
                   help="update docs/benchmarks.md (default: yes, except with --quick)")
    a = p.parse_args(argv)
    a.repeats = a.repeats if a.repeats is not None else (1 if a.quick else 3)
    a.duration = a.duration if a.duration is not None else (5 if a.quick else 15)
    a.docs = a.docs if a.docs is not None else not a.quick
    if a.repeats < 1 or a.duration < 1 or a.users < 1:
        p.error("--repeats, --duration and --users must be at least 1")
    scenario = SCENARIOS[a.scenario]
    a.tool_names = a.tools.split(",") if a.tools else list(scenario.tools)
    for t in a.tool_names:
        if t not in TOOLS:
            p.error(f"unknown tool {t!r} (known: {', '.join(TOOLS)})")
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        markdown = render_results(report)
        print(markdown)
        if args.docs:
            update_doc(markdown)
            log(f"updated the results section of {DOC.relative_to(ROOT)}")
        return 0
    scenario = SCENARIOS[args.scenario]
    command = "python3 bench/run.py" + "".join(" " + shlex.quote(a) for a in argv)
    if args.repeats < 3 and not args.quick:
        log(f"warning: {args.repeats} repeat(s); the median of at least 3 is what to publish")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    # Explicitly, as a shell's background job starts with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    workdir = Path(tempfile.mkdtemp(prefix="hopper-bench-"))
    nginx = Nginx(workdir)
    runs: list[dict] = []
    try:
        ctx = Context(url="", path=scenario.path, users=args.users, duration=args.duration,
                      workdir=workdir, skip_build=args.skip_build)
        apt_install("nginx", "nginx-light")
        tools = [TOOLS[t] for t in args.tool_names]
        for t in tools:
            t.prepare(ctx)
        nginx.start()
        ctx.url = nginx.url
        raw = RESULTS / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for old in raw.glob("*.log"):
            old.unlink()
        total = args.repeats * len(tools)
        n = 0
        for rep in range(args.repeats):
            # Rotate the order every repeat so no tool always runs first or after another.
            order = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for i, tool in enumerate(order):
                n += 1
                if not nginx.alive():
                    raise RuntimeError("nginx died")
                log(f"run {n}/{total}: repeat {rep + 1}, {tool.name} "
                    f"(load average {' '.join(f'{x:.2f}' for x in loadavg())})")
                rec = run_one(tool, ctx, nginx, rep, i, raw)
                runs.append(rec)
                if rec["ok"]:
                    log(f"  {rec['requests']:,} requests, {rec['user_s']:.2f} + {rec['sys_s']:.2f} "
                        f"CPU s, {rec['req_per_cpu_s']:,.0f} req/CPU-s, wall {rec['wall_s']:.1f} s, "
                        f"nginx {rec['nginx_cpu_s']:.2f} CPU s, rest {rec['rest_cpu_s']:.2f} "
                        f"CPU s (other processes at least "
                        f"{rec['other_processes_cpu_s_lower_bound']:.2f})")
                if n < total:
                    time.sleep(args.cooldown)
    except KeyboardInterrupt:
        log("interrupted: stopping children and nginx")
        return 130
    finally:
        stop_all_children()
        nginx.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarize(runs, REFERENCE_TOOL)
    report = {
        "command": command,
        "config": {"scenario": scenario.name, "description": scenario.description,
                   "repeats": args.repeats, "duration": args.duration, "users": args.users,
                   "tools": args.tool_names, "reference": REFERENCE_TOOL},
        "machine": machine_info(),
        "tool_commands": {t: describe_command(TOOLS[t], ctx) for t in args.tool_names},
        "summary": summary,
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_results(report)
    print(markdown)
    log(f"wrote {RESULTS / 'latest.json'}")
    if args.docs:
        update_doc(markdown)
        log(f"updated the results section of {DOC.relative_to(ROOT)}")
    failed = [r for r in runs if not r["ok"]]
    if failed:
        log(f"{len(failed)} run(s) failed: " + "; ".join(
            f"{r['tool']} (repeat {r['repeat'] + 1})" for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
