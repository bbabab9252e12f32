"""The benchmark's scenarios. Each runs every one of its tools, interleaved (the order rotates
each repeat) and repeated, against servers on 127.0.0.1, and returns a section of the report:
{"name", "config", "runs", "summary", "commands"}.

* throughput: 50 users with no wait, GET /fast from nginx: requests per CPU-second.
* idle: 1k / 5k / 15k users that wait 10 s between requests: RSS per user.
* cluster: a master and 2 workers of each kind, as throughput: requests per CPU-second of
  all three processes.
* master: N simulated workers on one master, 20 or 100 request names: the master's CPU and
  RSS, and whether its totals equal what the workers sent.
* accuracy: a target with a known delay distribution: each tool's percentiles against the
  delays the target measured.

Every process is bounded in time (killed after a grace period) and stopped by its PID.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import arith
import parsers
import procs
import tools
from procs import (CLK_TCK, Measured, cpu_ticks, free_port, listening, loadavg, log,
                   machine_busy_s, others_cpu_s, process_table, vm_hwm_kib, vm_rss_kib,
                   wait_until)
from targets import DelayTarget, Nginx, nofile_hard_limit

# Seconds a run may take beyond its duration (startup, shutdown) before it is killed.
GRACE_S = 45.0
# Locust's spawn rate for idle users: as fast as one process spawns them without failing
# requests (each new user connects and makes its first request at once).
LOCUST_IDLE_RATE = 1000
# Hopper's master holds one descriptor per worker connection, and serves at most 32,768
# connections (crates/hopper-cluster/src/transport/router.rs).
HOPPER_MASTER_FDS_PER_WORKER = 1
HOPPER_MASTER_MAX_CONNECTIONS = 32768
# How long a master may take to quit its workers and print its summary after SIGTERM.
MASTER_STOP_GRACE_S = 40.0


@dataclass
class Settings:
    """How long and how often: the defaults of a full run, or of --quick."""

    repeats: int = 3
    duration: int = 10
    users: int = 50
    cooldown: float = 2.0
    idle_sizes: tuple = (1000, 5000, 15000)
    master_workers: tuple = (100, 1000, 10000)
    master_names: tuple = (20, 100)
    master_settle_s: float = 5.0
    master_windows: int = 3
    master_window_s: float = 6.0
    tools: dict = field(default_factory=dict)  # scenario -> tool names

    @classmethod
    def quick(cls) -> "Settings":
        return cls(repeats=1, duration=3, cooldown=1.0, idle_sizes=(200, 1000, 2000),
                   master_workers=(10, 100, 1000), master_names=(100,), master_settle_s=4.0,
                   master_windows=1, master_window_s=3.0)


@dataclass
class Env:
    """What the scenarios share: the temp dir, the raw-output dir and the targets."""

    workdir: Path
    raw: Path
    nginx: Nginx
    delay: Optional[DelayTarget]
    wrk_path: str


def _ctx(env: Env, settings: Settings, url: str, path: str = "/fast", **kw) -> tools.Context:
    return tools.Context(url=url, path=path, users=kw.pop("users", settings.users),
                         duration=kw.pop("duration", settings.duration), workdir=env.workdir,
                         wrk_path=env.wrk_path, **kw)


def rotated(items: list, rep: int) -> list:
    """items rotated by rep: each repeat starts with another one."""
    k = rep % len(items)
    return items[k:] + items[:k]


def describe(cmd: list[str], env: Env, urls: dict) -> str:
    """A command as the report shows it: paths relative, URLs and ports by name."""
    import shlex
    s = " ".join(shlex.quote(a) for a in cmd)
    target = tools.target_dir()
    shown = "target/" if target == procs.ROOT / "target" else "$CARGO_TARGET_DIR/"
    s = s.replace(str(target) + "/", shown)
    for prefix in (str(env.workdir) + "/", str(procs.ROOT) + "/"):
        s = s.replace(prefix, "")
    for url, name in urls.items():
        s = s.replace(url, name)
    return s


# ---------------------------------------------------------------------------------------------
# Single-process runs against a target: throughput and accuracy
# ---------------------------------------------------------------------------------------------


def run_one(tool: tools.Tool, ctx: tools.Context, env: Env, target_pids: list[int],
            tag: str) -> dict:
    """One measured run of a tool: its CPU, peak RSS and parsed output, and where the rest of
    the machine's CPU went meanwhile (the target, and the rest)."""
    cmd = tool.command(ctx)
    rec = {"tool": tool.name, "command": cmd, "ok": False, "loadavg_before": loadavg()}
    procs0, busy0 = process_table(), machine_busy_s()
    target0 = procs.process_cpu_s(target_pids)
    m = procs.run_measured(cmd, ctx.duration + GRACE_S, env.raw / f"{tag}.log",
                           env=tool.env(ctx), cwd=env.workdir)
    busy1, target1, procs1 = machine_busy_s(), procs.process_cpu_s(target_pids), process_table()
    output = m.pop("output")
    rec.update(m)
    # Where the rest of the machine's busy CPU went during the run: the target, and the rest
    # (other processes, the noise of a shared machine, plus kernel work charged to no process:
    # interrupts and softirqs that ran while a core was otherwise idle).
    rec["machine_busy_cpu_s"] = busy1 - busy0
    rec["target_cpu_s"] = target1 - target0
    rec["rest_cpu_s"] = rec["machine_busy_cpu_s"] - rec["target_cpu_s"] - m["user_s"] - m["sys_s"]
    exclude = {os.getpid(), *target_pids}
    rec["other_processes_cpu_s_lower_bound"] = others_cpu_s(procs0, procs1, exclude)
    try:
        if m["timed_out"]:
            raise RuntimeError(f"{tool.name} did not finish within {ctx.duration + GRACE_S:.0f} s")
        if m["returncode"] not in tool.ok_returncodes:
            raise RuntimeError(f"{tool.name} exited with {m['returncode']}")
        parsed = tool.parse(output)
        rec.update(parsed)
        rec.update(arith.run_metrics(parsed, m))
        rec["ok"] = True
    except (parsers.ParseError, RuntimeError, ValueError) as e:
        rec["error"] = str(e)
        tail = "" if isinstance(e, parsers.ParseError) else "\n" + "\n".join(
            output.strip().splitlines()[-10:])
        log(f"{tool.name} run failed: {e}{tail}")
    return rec


def _summary_line(rec: dict) -> str:
    if not rec["ok"]:
        return f"  failed: {rec.get('error', '').splitlines()[0]}"
    return (f"  {rec['requests']:,} requests, {rec['user_s']:.2f} + {rec['sys_s']:.2f} CPU s, "
            f"{rec['req_per_cpu_s']:,.0f} req/CPU-s, wall {rec['wall_s']:.1f} s, target "
            f"{rec['target_cpu_s']:.2f} CPU s, rest {rec['rest_cpu_s']:.2f} CPU s")


def run_throughput(settings: Settings, env: Env) -> dict:
    names = settings.tools.get("throughput") or list(tools.TOOLS)
    runs = []
    ctx = _ctx(env, settings, env.nginx.url)
    for rep in range(settings.repeats):
        for i, name in enumerate(rotated(names, rep)):
            tool = tools.TOOLS[name]
            if not env.nginx.alive():
                raise RuntimeError("nginx died")
            log(f"throughput: repeat {rep + 1}/{settings.repeats}, {name} "
                f"(load average {loadavg()[0]:.2f})")
            rec = run_one(tool, ctx, env, env.nginx.pids(), f"throughput-{rep}-{name}")
            rec.update(repeat=rep, order=i)
            runs.append(rec)
            log(_summary_line(rec))
            time.sleep(settings.cooldown)
    return {
        "name": "throughput",
        "config": {"repeats": settings.repeats, "duration": settings.duration,
                   "users": settings.users, "tools": names, "reference": "wrk"},
        "labels": {n: tools.TOOLS[n].label for n in names},
        "runs": runs,
        "summary": arith.summarize(runs, "wrk" if "wrk" in names else None),
        "commands": {n: describe(tools.TOOLS[n].command(ctx), env,
                                 {env.nginx.url: "http://127.0.0.1:PORT"}) for n in names},
    }


PERCENTILES = ("p50", "p90", "p99")


def run_accuracy(settings: Settings, env: Env) -> dict:
    names = settings.tools.get("accuracy") or list(tools.TOOLS)
    runs = []
    delay = env.delay
    ctx = _ctx(env, settings, delay.url)
    for rep in range(settings.repeats):
        for i, name in enumerate(rotated(names, rep)):
            tool = tools.TOOLS[name]
            if not delay.alive():
                raise RuntimeError("the delay target died")
            log(f"accuracy: repeat {rep + 1}/{settings.repeats}, {name}")
            delay.reset()
            rec = run_one(tool, ctx, env, delay.pids(), f"accuracy-{rep}-{name}")
            rec.update(repeat=rep, order=i)
            try:
                rec["truth"] = delay.stats()
            except (OSError, parsers.ParseError) as e:
                rec["ok"], rec["error"] = False, f"no true percentiles from the target: {e}"
            if rec["ok"]:
                for q in PERCENTILES:
                    rec[f"{q}_err"] = arith.rel_error(rec.get(f"{q}_ms"), rec["truth"][f"{q}_ms"])
                    rec[f"{q}_approx_err"] = arith.rel_error(rec.get(f"{q}_approx_ms"),
                                                             rec["truth"][f"{q}_ms"])
                log(f"  {tool.name}: p50/p90/p99 {rec.get('p50_ms')}/{rec.get('p90_ms')}/"
                    f"{rec.get('p99_ms')} ms; true {rec['truth']['p50_ms']}/"
                    f"{rec['truth']['p90_ms']}/{rec['truth']['p99_ms']} ms")
            else:
                log(_summary_line(rec))
            runs.append(rec)
            time.sleep(settings.cooldown)
    fields = tuple(f"{q}_{k}" for q in PERCENTILES
                   for k in ("ms", "err", "approx_ms", "approx_err")) + (
        "requests", "rps", "req_per_cpu_s", "cpu_s")
    summary = arith.summarize(runs, None, fields)
    for name, s in summary.items():
        ok = [r for r in runs if r["ok"] and r["tool"] == name]
        for q in PERCENTILES:
            s[f"true_{q}_ms"] = arith.median([r["truth"][f"{q}_ms"] for r in ok])
        s["true_count"] = arith.median([r["truth"]["count"] for r in ok])
    return {
        "name": "accuracy",
        "config": {"repeats": settings.repeats, "duration": settings.duration,
                   "users": settings.users, "tools": names,
                   "delays": "1 ms 60 %, 10 ms 35 %, 100 ms 5 % (a fixed 20-request pattern)"},
        "labels": {n: tools.TOOLS[n].label for n in names},
        "runs": runs,
        "summary": summary,
        "commands": {n: describe(tools.TOOLS[n].command(ctx), env,
                                 {delay.url: "http://127.0.0.1:DELAY_PORT"}) for n in names},
    }


# ---------------------------------------------------------------------------------------------
# Idle users
# ---------------------------------------------------------------------------------------------


def _settled(nginx: Nginx, base_active: int, timeout_s: float) -> None:
    """Waits until the previous run's connections are gone from nginx."""
    wait_until(lambda: nginx.status()["active"] <= base_active, timeout_s, 0.5)


def idle_one(tool: tools.Tool, users: int, settings: Settings, env: Env, tag: str,
             base_active: int) -> dict:
    nginx = env.nginx
    _settled(nginx, base_active, 30)
    url = nginx.spare_url()
    rate = users if tool.name == "hopper" else min(users, LOCUST_IDLE_RATE)
    spawn_s = users / rate
    # Long enough for the spawn and the measurement; the run is stopped as soon as measured.
    run_time = int(spawn_s + 120)
    ctx = _ctx(env, settings, url, users=users, spawn_rate=rate, run_time=run_time)
    rec = {"tool": tool.name, "users": users, "spawn_rate": rate, "ok": False,
           "loadavg_before": loadavg(), "command": tool.command(ctx)}
    s0 = nginx.status()
    m = Measured(tool.command(ctx), env.raw / f"{tag}.log", env=tool.env(ctx), cwd=env.workdir)
    t0 = time.monotonic()
    progress = {"active": 0, "requests": 0, "spawned_at": None}

    def all_in() -> bool:
        if not m.running():
            return True
        st = nginx.status()
        progress["active"] = st["active"] - s0["active"]
        progress["requests"] = st["requests"] - s0["requests"] - 1  # this query excluded
        # Every user holds a connection and has made its first request.
        if progress["active"] >= users and progress["requests"] >= users:
            return True
        # A generator that closes some idle connections between requests (Locust's
        # FastHttpUser at 15,000 users keeps ~94 % open): every user has made its first
        # request once all were spawned a whole wait ago and as many requests were served.
        if progress["spawned_at"] is None and parsers.all_users_spawned(m.output()) == users:
            progress["spawned_at"] = time.monotonic()
        return (progress["spawned_at"] is not None and progress["requests"] >= users
                and time.monotonic() - progress["spawned_at"] >= tools.IDLE_WAIT_S + 1)

    reached = wait_until(all_in, spawn_s + 60, 0.25)
    rec["seconds_to_all"] = time.monotonic() - t0
    try:
        if not m.running():
            raise RuntimeError(f"{tool.name} exited before all users had made a request")
        if not reached:
            raise RuntimeError(
                f"after {rec['seconds_to_all']:.0f} s only {progress['active']} of {users} "
                f"connections were open and {progress['requests']} requests made")
        # A moment for allocations that follow the first response (buffers, timers).
        time.sleep(2.0)
        rec["rss_kib"] = vm_rss_kib(m.pid)
        rec["hwm_kib"] = vm_hwm_kib(m.pid)
        rec["connections"] = nginx.status()["active"] - s0["active"]
        rec["ok"] = rec["rss_kib"] is not None
        if not rec["ok"]:
            raise RuntimeError(f"{tool.name} ended before its memory was read")
    except RuntimeError as e:
        rec["error"] = str(e)
        log(f"  {tool.name} with {users} users failed: {e}")
    result = m.stop(GRACE_S)
    rec.update({k: result[k] for k in ("returncode", "wall_s", "user_s", "sys_s", "timed_out")})
    try:
        rec["summary_requests"] = tool.parse(result["output"])["requests"]
    except parsers.ParseError:
        rec["summary_requests"] = None
    return rec


def run_idle(settings: Settings, env: Env) -> dict:
    # Locust's HttpUser is left out unless named (--tools): it keeps the whole suite under
    # 30 minutes, and FastHttpUser is Locust's lighter user.
    names = settings.tools.get("idle") or ["hopper", "locust-fast"]
    runs = []
    base_active = env.nginx.status()["active"]
    for rep in range(settings.repeats):
        for name in rotated(names, rep):
            tool = tools.IDLE_TOOLS[name]
            for users in settings.idle_sizes:
                log(f"idle: repeat {rep + 1}/{settings.repeats}, {name}, {users} users")
                rec = idle_one(tool, users, settings, env, f"idle-{rep}-{name}-{users}",
                               base_active)
                rec["repeat"] = rep
                runs.append(rec)
                if rec["ok"]:
                    log(f"  RSS {rec['rss_kib'] / 1024:.1f} MiB after {rec['seconds_to_all']:.1f} s "
                        f"({rec['rss_kib'] / users:.2f} KiB per user overall)")
                time.sleep(settings.cooldown)
    summary = {}
    for name in names:
        points = {}
        for users in settings.idle_sizes:
            vals = [r["rss_kib"] for r in runs if r["ok"] and r["tool"] == name
                    and r["users"] == users]
            if vals:
                points[users] = arith.median(vals)
        sizes = sorted(points)
        pairwise = {f"{a}-{b}": (points[b] - points[a]) / (b - a)
                    for a, b in zip(sizes, sizes[1:])}
        secs = {u: arith.median([r["seconds_to_all"] for r in runs if r["ok"]
                                 and r["tool"] == name and r["users"] == u])
                for u in sizes}
        conns = {u: arith.median([r["connections"] for r in runs if r["ok"]
                                  and r["tool"] == name and r["users"] == u])
                 for u in sizes}
        summary[name] = {
            "rss_kib": points,
            "seconds_to_all": secs,
            "connections": conns,
            "kib_per_user": arith.slope(list(points.items())),
            "kib_per_user_pairwise": pairwise,
            "runs": sum(1 for r in runs if r["ok"] and r["tool"] == name),
        }
    ctx = _ctx(env, settings, "http://127.0.0.1:PORT", users=settings.idle_sizes[-1])
    commands = {}
    for n in names:
        t = tools.IDLE_TOOLS[n]
        rate = settings.idle_sizes[-1] if n == "hopper" else LOCUST_IDLE_RATE
        ctx.spawn_rate, ctx.run_time = rate, int(settings.idle_sizes[-1] / rate + 120)
        commands[n] = describe(t.command(ctx), env, {})
    return {
        "name": "idle",
        "config": {"repeats": settings.repeats, "sizes": list(settings.idle_sizes),
                   "wait_s": tools.IDLE_WAIT_S, "tools": names,
                   "locust_spawn_rate": LOCUST_IDLE_RATE},
        "labels": {n: tools.IDLE_TOOLS[n].label for n in names},
        "runs": runs,
        "summary": summary,
        "commands": commands,
    }


# ---------------------------------------------------------------------------------------------
# Master and workers: throughput
# ---------------------------------------------------------------------------------------------


def cluster_one(kind: str, settings: Settings, env: Env, tag: str) -> dict:
    port = free_port()
    ctx = _ctx(env, settings, env.nginx.url)
    master_cmd, worker_cmd = tools.cluster_commands(kind, ctx, port)
    rec = {"tool": kind, "ok": False, "loadavg_before": loadavg(),
           "commands": [master_cmd, worker_cmd]}
    nginx0 = env.nginx.cpu_s()
    master = Measured(master_cmd, env.raw / f"{tag}-master.log")
    wait_until(lambda: listening(port) or not master.running(), 15, 0.1)
    workers = [Measured(worker_cmd, env.raw / f"{tag}-worker{i}.log") for i in range(2)]
    bound = settings.duration + GRACE_S + 30
    m = master.wait(bound)
    ws = [w.wait(30) for w in workers]
    rec["nginx_cpu_s"] = env.nginx.cpu_s() - nginx0
    procs_ = [m] + ws
    rec["master"] = {k: m[k] for k in ("returncode", "user_s", "sys_s", "peak_rss_kib",
                                       "wall_s", "timed_out")}
    rec["workers"] = [{k: w[k] for k in ("returncode", "user_s", "sys_s", "peak_rss_kib",
                                         "timed_out")} for w in ws]
    rec["user_s"] = sum(p["user_s"] for p in procs_)
    rec["sys_s"] = sum(p["sys_s"] for p in procs_)
    rec["wall_s"] = m["wall_s"]
    rec["peak_rss_kib"] = sum(p["peak_rss_kib"] or 0 for p in procs_) or None
    try:
        if m["timed_out"]:
            raise RuntimeError(f"the {kind} master did not finish within {bound:.0f} s")
        if m["returncode"] not in (0, 1):
            raise RuntimeError(f"the {kind} master exited with {m['returncode']}")
        parsed = parsers.parse_locust_style(m["output"], f"{kind} master")
        rec.update(parsed)
        rec.update(arith.run_metrics(parsed, rec))
        rec["ok"] = True
    except (parsers.ParseError, RuntimeError, ValueError) as e:
        rec["error"] = str(e)
        log(f"  cluster {kind} failed: {e}")
    return rec


def run_cluster(settings: Settings, env: Env) -> dict:
    kinds = settings.tools.get("cluster") or list(tools.CLUSTER_TOOLS)
    runs = []
    for rep in range(settings.repeats):
        for i, kind in enumerate(rotated(kinds, rep)):
            log(f"cluster: repeat {rep + 1}/{settings.repeats}, {kind} master + 2 workers")
            rec = cluster_one(kind, settings, env, f"cluster-{rep}-{kind}")
            rec.update(repeat=rep, order=i)
            runs.append(rec)
            if rec["ok"]:
                log(f"  {rec['requests']:,} requests, {rec['user_s'] + rec['sys_s']:.2f} CPU s "
                    f"(3 processes), {rec['req_per_cpu_s']:,.0f} req/CPU-s")
            time.sleep(settings.cooldown)
    ctx = _ctx(env, settings, env.nginx.url)
    commands = {}
    for k in kinds:
        mc, wc = tools.cluster_commands(k, ctx, 5557)
        urls = {env.nginx.url: "http://127.0.0.1:PORT"}
        commands[k] = describe(mc, env, urls) + "\n  " + describe(wc, env, urls) + "   # twice"
    return {
        "name": "cluster",
        "config": {"repeats": settings.repeats, "duration": settings.duration,
                   "users": settings.users, "workers": 2, "tools": kinds},
        "labels": dict(tools.CLUSTER_TOOLS),
        "runs": runs,
        "summary": arith.summarize(runs, None),
        "commands": commands,
    }


# ---------------------------------------------------------------------------------------------
# Master capacity: simulated workers
# ---------------------------------------------------------------------------------------------


def master_limit(kind: str) -> Optional[int]:
    """The most workers a master of this kind can take under the open-files hard limit (None:
    no limit below the simulator's own)."""
    hard = nofile_hard_limit()
    if kind == "hopper":
        return min(HOPPER_MASTER_MAX_CONNECTIONS,
                   (hard - 200) // HOPPER_MASTER_FDS_PER_WORKER // 100 * 100)
    return None


def simulator_limit() -> int:
    # One socket per simulated worker, plus the runtime's own descriptors.
    return (nofile_hard_limit() - 100) // 100 * 100


def master_one(kind: str, workers: int, names: int, settings: Settings, env: Env,
               tag: str) -> dict:
    port = free_port()
    connect_s = workers / 1000.0  # the simulator connects 1,000 workers per second
    max_s = int(connect_s + settings.master_settle_s
                + settings.master_windows * settings.master_window_s + 180)
    rec = {"tool": kind, "workers": workers, "names": names, "ok": False,
           "loadavg_before": loadavg()}
    master = Measured(tools.master_command(kind, env.workdir, port, workers, max_s),
                      env.raw / f"{tag}-master.log")
    rec["command"] = master.cmd
    if not wait_until(lambda: listening(port) or not master.running(), 20, 0.1):
        log(f"  the {kind} master is not listening on {port} after 20 s")
    sim = Measured(tools.simulator_command(port, workers, names, max_s),
                   env.raw / f"{tag}-simulator.log")
    t0 = time.monotonic()
    try:
        spawned = wait_until(
            lambda: parsers.all_users_spawned(master.output()) is not None
            or not master.running() or not sim.running(),
            connect_s + 45, 0.25)
        rec["seconds_to_spawned"] = time.monotonic() - t0
        if not master.running():
            raise RuntimeError(f"the {kind} master exited early")
        if not sim.running():
            raise RuntimeError("the simulator exited early")
        rec["all_spawned"] = spawned and parsers.all_users_spawned(master.output()) is not None
        if not rec["all_spawned"]:
            log(f"  the {kind} master did not spawn all users within "
                f"{rec['seconds_to_spawned']:.0f} s; measuring it as it is")
        # Every worker sends its first full report within 3 s of its spawn.
        time.sleep(settings.master_settle_s)
        windows, sim_windows = [], []
        for _ in range(settings.master_windows):
            c0, s0, w0 = cpu_ticks(master.pid), cpu_ticks(sim.pid), time.monotonic()
            time.sleep(settings.master_window_s)
            c1, s1, w1 = cpu_ticks(master.pid), cpu_ticks(sim.pid), time.monotonic()
            if None in (c0, c1, s0, s1):
                raise RuntimeError("the master or the simulator ended during the measurement")
            windows.append(arith.cpu_percent(c0, c1, CLK_TCK, w1 - w0))
            sim_windows.append(arith.cpu_percent(s0, s1, CLK_TCK, w1 - w0))
        rec["cpu_windows"] = windows
        rec["cpu_pct"] = arith.median(windows)
        rec["simulator_cpu_pct"] = arith.median(sim_windows)
        rec["rss_kib"] = vm_rss_kib(master.pid)
        rec["simulator_rss_kib"] = vm_rss_kib(sim.pid)
        # A master that cannot keep up reads heartbeats late and declares live workers
        # missing (both Locust and Hopper log this line).
        rec["missing_warnings"] = master.output().count("failed to send heartbeat")
        rec["ok"] = True
    except RuntimeError as e:
        rec["error"] = str(e)
        log(f"  master {kind} with {workers} workers failed: {e}")
    # SIGTERM: the master quits its workers (each sends its final report) and prints its
    # summary; one that is too far behind to do that in MASTER_STOP_GRACE_S is killed, and
    # its totals are unknown.
    m = master.stop(MASTER_STOP_GRACE_S)
    s = sim.wait(60)
    rec["master_returncode"], rec["master_timed_out"] = m["returncode"], m["timed_out"]
    rec["master_peak_rss_kib"] = m["peak_rss_kib"]
    try:
        sent = parsers.parse_simulator(s["output"])
        rec["sent"] = sent
    except parsers.ParseError as e:
        sent = None
        rec.setdefault("error", str(e))
        rec["ok"] = False
    try:
        got = parsers.parse_locust_style(m["output"], f"{kind} master")
        rec["master_requests"], rec["master_failures"] = got["requests"], got["failures"]
    except parsers.ParseError as e:
        rec["master_requests"] = rec["master_failures"] = None
        rec["summary_error"] = str(e).splitlines()[0]
    if sent is not None and rec["master_requests"] is not None:
        rec["exact_totals"] = (rec["master_requests"] == sent["requests"]
                               and rec["master_failures"] == sent["failures"])
    else:
        rec["exact_totals"] = None
    return rec


def run_master(settings: Settings, env: Env) -> dict:
    kinds = settings.tools.get("master") or list(tools.MASTER_TOOLS)
    runs = []
    limits = {k: master_limit(k) for k in kinds}
    sim_max = simulator_limit()
    plan = []
    for names in settings.master_names:
        for n in settings.master_workers:
            for i, kind in enumerate(rotated(kinds, len(plan))):
                fit = min(n, sim_max, limits[kind] or n)
                plan.append((kind, n, fit, names))
    for kind, asked, n, names in plan:
        note = "" if n == asked else f" (asked {asked:,}: the largest N that fits)"
        log(f"master: {kind}, {n:,} workers{note}, {names} names")
        rec = master_one(kind, n, names, settings, env, f"master-{kind}-{n}-{names}")
        rec["asked_workers"] = asked
        runs.append(rec)
        if rec["ok"]:
            log(f"  master CPU {rec['cpu_pct']:.1f} % of a core (windows "
                f"{', '.join(f'{w:.1f}' for w in rec['cpu_windows'])}), RSS "
                f"{rec['rss_kib'] / 1024:.0f} MiB, simulator {rec['simulator_cpu_pct']:.0f} %, "
                f"totals exact: {rec['exact_totals']} (master {rec['master_requests']}, "
                f"sent {rec.get('sent', {}).get('requests')})")
        time.sleep(settings.cooldown)
    return {
        "name": "master",
        "config": {"workers": list(settings.master_workers),
                   "names": list(settings.master_names),
                   "settle_s": settings.master_settle_s, "windows": settings.master_windows,
                   "window_s": settings.master_window_s, "tools": kinds,
                   "limits": {k: v for k, v in limits.items()}, "simulator_limit": sim_max,
                   "nofile_hard_limit": nofile_hard_limit()},
        "labels": dict(tools.MASTER_TOOLS),
        "runs": runs,
        "summary": {},
        "commands": {k: describe(tools.master_command(k, env.workdir, 5557, 1000, 300), env, {})
                     for k in kinds} | {
            "simulator": describe(tools.simulator_command(5557, 1000, 100, 300), env, {})},
    }


SCENARIOS = {
    "throughput": run_throughput,
    "idle": run_idle,
    "cluster": run_cluster,
    "master": run_master,
    "accuracy": run_accuracy,
}
