"""Processes and the machine: children started in their own process group, measured with
wait4 (user + sys CPU of the process and the children it reaped), sampled through /proc
(CPU ticks, VmRSS, VmHWM) and always stopped by their PID; the machine's load and busy CPU;
what the report says about the machine.

Only processes this module started are ever signalled: each child leads its own process
group, and only those groups are signalled.
"""

from __future__ import annotations

import datetime
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

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


def spawn(cmd: list[str], out, env=None, cwd=None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or ROOT,
        env=env, start_new_session=True,
    )
    _children[proc.pid] = proc
    return proc


def vm_hwm_kib(pid: int) -> Optional[int]:
    """The peak resident set size of a process's current program (VmHWM), in KiB."""
    return proc_status_kib(pid, "VmHWM")


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


def proc_status_kib(pid: int, field: str) -> Optional[int]:
    """A KiB figure of /proc/PID/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def vm_rss_kib(pid: int) -> Optional[int]:
    return proc_status_kib(pid, "VmRSS")


def cpu_ticks(pid: int) -> Optional[int]:
    """User + sys CPU ticks of a process (all its threads) so far, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """n distinct free ports of 127.0.0.1."""
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


class Measured:
    """A child process measured from start to end: wall time, wait4's user + sys CPU, and its
    own peak RSS (VmHWM sampled every 0.1 s: wait4's ru_maxrss would include the memory of
    this Python process, which Linux carries across fork + exec).

    wait() bounds its life: past the timeout the process gets SIGTERM, then SIGKILL 5 s later.
    """

    def __init__(self, cmd: list[str], out_path: Path, env: Optional[dict] = None,
                 cwd: Optional[Path] = None):
        self.cmd = cmd
        self.out_path = out_path
        self._out = open(out_path, "wb")
        self.t0 = time.monotonic()
        self.proc = spawn(cmd, self._out, env=env, cwd=cwd)
        self.pid = self.proc.pid
        self._done = threading.Event()
        self._hwm = 0
        self.result: Optional[dict] = None
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        self._waiter = threading.Thread(target=self._wait4, daemon=True)
        self._waiter.start()

    def _sample(self):
        while not self._done.wait(0.1):
            v = vm_hwm_kib(self.pid)
            if v is not None and not self._done.is_set():
                self._hwm = max(self._hwm, v)

    def _wait4(self):
        _, status, ru = os.wait4(self.pid, 0)
        wall = time.monotonic() - self.t0
        self._done.set()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        _children.pop(self.pid, None)
        self.result = {
            "returncode": self.proc.returncode,
            "wall_s": wall,
            "user_s": ru.ru_utime,
            "sys_s": ru.ru_stime,
            "peak_rss_kib": self._hwm or None,
            "ru_maxrss_kib": ru.ru_maxrss,  # Linux: KiB, inflated by the parent's (see above)
        }

    def running(self) -> bool:
        return not self._done.is_set()

    def output(self) -> str:
        self._out.flush()
        return self.out_path.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.running():
            _signal_group(self.pid, sig)

    def wait(self, timeout_s: float) -> dict:
        """Waits for the end (killing the process after timeout_s) and returns its numbers,
        with timed_out and its output."""
        timed_out = False
        if not self._done.wait(timeout_s):
            timed_out = True
            self.signal(signal.SIGTERM)
            if not self._done.wait(5):
                self.signal(signal.SIGKILL)
                self._done.wait(10)
        self._waiter.join(10)
        self._sampler.join(1)
        self._out.close()
        r = dict(self.result or {"returncode": None, "wall_s": time.monotonic() - self.t0,
                                 "user_s": 0.0, "sys_s": 0.0, "peak_rss_kib": None})
        r["timed_out"] = timed_out
        r["output"] = self.out_path.read_text(errors="replace")
        return r

    def stop(self, grace_s: float = 30.0) -> dict:
        """SIGTERM now, then as wait() with grace_s."""
        self.signal(signal.SIGTERM)
        return self.wait(grace_s)


def run_measured(cmd: list[str], timeout_s: float, out_path: Path, env: Optional[dict] = None,
                 cwd: Optional[Path] = None) -> dict:
    """Runs cmd to its end (killing it after timeout_s) and measures it (see Measured)."""
    return Measured(cmd, out_path, env=env, cwd=cwd).wait(timeout_s)


def wait_until(pred, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Polls pred() until it is true (True) or timeout_s passed (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def listening(port: int) -> bool:
    """Whether something listens on TCP port of 127.0.0.1 or every address (/proc/net/tcp),
    found without connecting to it."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
                return True
    return False
