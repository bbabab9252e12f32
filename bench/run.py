#!/usr/bin/env python3
"""Hopper's benchmark suite: load generators side by side, on this machine, against 127.0.0.1.

    python3 bench/run.py                 # everything, ~25 minutes: updates docs/benchmarks.md
    python3 bench/run.py --quick         # 1 repeat, short runs, smaller N: < 5 minutes
    python3 bench/run.py --scenarios throughput,accuracy --tools wrk,hopper

It installs what it needs when missing (see tools.py: nginx and wrk from Debian, Locust and
matplotlib in bench/.venv, oha and the Goose load test built into bench/.cache, Hopper's
programs with cargo), starts a private nginx and the delay target on 127.0.0.1, and runs
the scenarios (see scenarios.py): throughput, idle, cluster, master, accuracy. Each one runs
all its tools interleaved (the order rotates each repeat), repeated, every run bounded in
time; medians are reported.

Results: bench/results/latest.json and each run's raw output in bench/results/raw/ (not
committed); unless --quick (or --no-docs), also docs/bench/results.json, the plots in
docs/bench/*.png and the marked results section of docs/benchmarks.md.

Python 3 standard library only (the plots are drawn by plots.py in the virtualenv).
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procs  # noqa: E402
import scenarios  # noqa: E402
import tools  # noqa: E402
from procs import ROOT, log  # noqa: E402

# What the tests import from here (the harness's entry point re-exports its parts).
from arith import median, per_cpu_second, ratio, run_metrics, summarize  # noqa: E402,F401
from parsers import (ParseError, _wrk_time_ms, parse_goose, parse_hopper,  # noqa: E402,F401
                     parse_locust, parse_oha, parse_wrk)
from report import MARK_END, MARK_START, render_results, update_doc  # noqa: E402,F401

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "benchmarks.md"
DOC_DIR = ROOT / "docs" / "bench"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="1 repeat, 3 s runs, smaller N (does not update the docs)")
    p.add_argument("--scenarios", default=",".join(scenarios.SCENARIOS),
                   help=f"comma-separated subset of {', '.join(scenarios.SCENARIOS)}")
    p.add_argument("--repeats", type=int, help="runs per tool (default 3; the median counts)")
    p.add_argument("--duration", type=int, help="seconds per throughput, cluster and accuracy "
                   "run (default 10)")
    p.add_argument("--users", type=int, default=50, help="users / connections (default 50)")
    p.add_argument("--tools", help="comma-separated subset of the tools, for every scenario "
                   "that has them")
    p.add_argument("--cooldown", type=float, help="seconds of pause between runs")
    p.add_argument("--skip-build", action="store_true", help="use Hopper's built programs as "
                   "they are")
    p.add_argument("--from-json", metavar="PATH", help="run nothing: render a saved results "
                   "JSON (and update the docs with it unless --no-docs)")
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None,
                   help="update docs/ (default: yes, except with --quick)")
    a = p.parse_args(argv)
    s = scenarios.Settings.quick() if a.quick else scenarios.Settings()
    if a.repeats is not None:
        s.repeats = a.repeats
    if a.duration is not None:
        s.duration = a.duration
    if a.cooldown is not None:
        s.cooldown = a.cooldown
    s.users = a.users
    if s.repeats < 1 or s.duration < 1 or s.users < 1:
        p.error("--repeats, --duration and --users must be at least 1")
    a.scenario_names = [x for x in a.scenarios.split(",") if x]
    for x in a.scenario_names:
        if x not in scenarios.SCENARIOS:
            p.error(f"unknown scenario {x!r} (known: {', '.join(scenarios.SCENARIOS)})")
    if a.tools:
        wanted = a.tools.split(",")
        known = set(tools.TOOLS) | set(tools.IDLE_TOOLS) | set(tools.CLUSTER_TOOLS) | set(
            tools.MASTER_TOOLS)
        for t in wanted:
            if t not in known:
                p.error(f"unknown tool {t!r} (known: {', '.join(sorted(known))})")
        per = {"throughput": tools.TOOLS, "accuracy": tools.TOOLS, "idle": tools.IDLE_TOOLS,
               "cluster": tools.CLUSTER_TOOLS, "master": tools.MASTER_TOOLS}
        for sc, table in per.items():
            s.tools[sc] = [t for t in wanted if t in table]
        # A scenario none of whose tools was named is not run.
        a.scenario_names = [x for x in a.scenario_names if s.tools[x]]
        if not a.scenario_names:
            p.error("no scenario runs any of the tools given")
    a.settings = s
    a.docs = a.docs if a.docs is not None else not a.quick
    return a


def draw_plots(results_json: Path, out_dir: Path) -> dict:
    """Runs plots.py in the virtualenv; {scenario: png path relative to docs/}."""
    py = tools.VENV / "bin" / "python"
    r = subprocess.run([str(py), str(BENCH / "plots.py"), str(results_json), str(out_dir)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        log(f"plots failed:\n{r.stderr[-2000:]}")
        return {}
    made = json.loads(r.stdout.strip().splitlines()[-1])
    rel = out_dir.relative_to(DOC.parent) if out_dir.is_relative_to(DOC.parent) else out_dir
    return {k: f"{rel}/{v}" for k, v in made.items()}


def publish(rep: dict, docs: bool) -> None:
    """Writes the results JSON, the plots and (with docs) the docs."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    latest.write_text(json.dumps(rep, indent=1) + "\n")
    log(f"wrote {latest.relative_to(ROOT)}")
    out_dir = DOC_DIR if docs else RESULTS
    rep["plots"] = draw_plots(latest, out_dir)
    if docs:
        DOC_DIR.mkdir(parents=True, exist_ok=True)
        (DOC_DIR / "results.json").write_text(json.dumps(rep, indent=1) + "\n")
    latest.write_text(json.dumps(rep, indent=1) + "\n")
    markdown = render_results(rep)
    print(markdown)
    if docs:
        (DOC_DIR / "results.md").write_text(markdown)
        update_doc(markdown, DOC)
        log(f"updated docs/bench/ and the results section of {DOC.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.from_json:
        rep = json.loads(Path(args.from_json).read_text())
        publish(rep, args.docs)
        return 0
    settings = args.settings
    command = "python3 bench/run.py" + "".join(" " + shlex.quote(a) for a in argv)
    started = time.monotonic()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    # Explicitly, as a shell's background job starts with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # Each process gets the open-files hard limit (15,000 idle users need 15,000 sockets).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    machine = procs.machine_info()
    machine["loadavg_start"] = procs.loadavg()
    machine["nofile_hard_limit"] = hard
    workdir = Path(tempfile.mkdtemp(prefix="hopper-bench-"))
    raw = RESULTS / "raw"
    sections: dict = {}
    nginx = delay = None
    failed = []
    try:
        names = set()
        for sc in ("throughput", "accuracy"):
            if sc in args.scenario_names:
                names |= set(settings.tools.get(sc) or tools.TOOLS)
        paths = tools.install_all(args.skip_build, need_oha="oha" in names,
                                  need_goose="goose" in names)
        raw.mkdir(parents=True, exist_ok=True)
        for old in raw.glob("*.log"):
            old.unlink()
        from targets import DelayTarget, Nginx
        nginx = Nginx(workdir)
        nginx.start(paths["nginx"])
        if "accuracy" in args.scenario_names:
            delay = DelayTarget(workdir, tools.hopper_program("delay_target"))
            delay.start()
        env = scenarios.Env(workdir=workdir, raw=raw, nginx=nginx, delay=delay,
                            wrk_path=paths["wrk"])
        for name in args.scenario_names:
            t0 = time.monotonic()
            log(f"=== scenario {name} (load average {procs.loadavg()[0]:.2f})")
            sections[name] = scenarios.SCENARIOS[name](settings, env)
            sections[name]["elapsed_s"] = time.monotonic() - t0
            log(f"=== scenario {name} took {sections[name]['elapsed_s']:.0f} s")
            failed += [f"{name}/{r['tool']}" for r in sections[name]["runs"] if not r["ok"]]
    except KeyboardInterrupt:
        log("interrupted: stopping children and targets")
        return 130
    finally:
        procs.stop_all_children()
        if nginx:
            nginx.stop()
        if delay:
            delay.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    rep = {
        "command": command,
        "quick": args.quick,
        "machine": machine,
        "elapsed_s": time.monotonic() - started,
        "loadavg_end": procs.loadavg(),
        "sections": sections,
    }
    publish(rep, args.docs)
    log(f"done in {rep['elapsed_s'] / 60:.1f} minutes")
    if failed:
        log(f"{len(failed)} run(s) failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
