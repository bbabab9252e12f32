"""The report: markdown tables of every scenario, the goals against what was measured, and the
marked results section of docs/benchmarks.md. Pure functions of the results JSON (so a saved
run re-renders with `run.py --from-json`), tested in bench/test_run.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import arith

MARK_START = "<!-- results:start -->"
MARK_END = "<!-- results:end -->"


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


def fmt_pct(x: Optional[float], signed: bool = True) -> str:
    if x is None:
        return "–"
    return f"{x * 100:+.1f} %" if signed else f"{x * 100:.1f} %"


def fmt_x(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.2f}×"


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def render_throughput(sec: dict) -> list[str]:
    cfg, summary, labels = sec["config"], sec["summary"], sec["labels"]
    ref = cfg.get("reference")
    lines = [
        f"### Throughput: {cfg['users']} users, no wait, GET /fast from nginx",
        "",
        f"{cfg['repeats']} interleaved repeat(s) of {cfg['duration']} s per tool; medians. "
        "Req per CPU-s: requests ÷ (user + sys CPU seconds of the generator over its whole run). "
        f"vs {ref}: ratio of the medians (in brackets: median of the ratios within a repeat). "
        "Percentiles are each tool's own (see *Latency percentiles* above).",
        "",
        "| Generator | Requests | Req/s | **Req per CPU-s** (min–max) | vs wrk (paired) "
        "| CPU s (user + sys) | p50 / p99 ms | Peak RSS MiB | Failures |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    order = sorted(cfg["tools"], key=lambda t: -(summary.get(t, {}).get("req_per_cpu_s") or 0))
    for t in order:
        s = summary.get(t)
        if not s:
            lines.append(f"| {labels[t]} | failed | | | | | | | |")
            continue
        vs = "–" if s.get("ratio") is None else f"{s['ratio']:.2f}× ({s['ratio_paired']:.2f}×)"
        src = " (HDR)" if t in ("hopper", "hyper") else ""
        lines.append(
            f"| {labels[t]} | {fmt_int(s['requests'])} | {fmt_int(s['rps'])} "
            f"| **{fmt_int(s['req_per_cpu_s'])}** ({fmt_k(s['req_per_cpu_s_min'])}–"
            f"{fmt_k(s['req_per_cpu_s_max'])}) | {vs} "
            f"| {s['cpu_s']:.2f} ({s['user_s']:.2f} + {s['sys_s']:.2f}) "
            f"| {fmt_ms(s['p50_ms'])} / {fmt_ms(s['p99_ms'])}{src} "
            f"| {fmt_mib(s['peak_rss_kib'])} | {fmt_int(s['failures'])} |")
    lines += ["", "<details><summary>Every run (load average before it; CPU of nginx and of the "
              "rest of the machine during it)</summary>", "",
              "| Repeat | Generator | Load avg | Requests | CPU s user + sys | Req per CPU-s "
              "| nginx CPU s | rest CPU s |",
              "|--:|---|--:|--:|--:|--:|--:|--:|"]
    for r in sec["runs"]:
        label = labels[r["tool"]]
        if not r["ok"]:
            lines.append(f"| {r['repeat'] + 1} | {label} | {r['loadavg_before'][0]:.2f} "
                         f"| failed: {_first_line(r.get('error'))} | | | | |")
            continue
        lines.append(
            f"| {r['repeat'] + 1} | {label} | {r['loadavg_before'][0]:.2f} "
            f"| {fmt_int(r['requests'])} | {r['user_s']:.2f} + {r['sys_s']:.2f} "
            f"| {fmt_int(r['req_per_cpu_s'])} | {r['target_cpu_s']:.2f} | {r['rest_cpu_s']:.2f} |")
    lines += ["", "</details>", ""]
    return lines


def render_idle(sec: dict) -> list[str]:
    cfg, summary, labels = sec["config"], sec["summary"], sec["labels"]
    sizes = cfg["sizes"]
    head = " / ".join(f"{s:,}" for s in sizes)
    lines = [
        f"### Many idle users: {head} users waiting {cfg['wait_s']} s between requests",
        "",
        f"{cfg['repeats']} repeat(s); RSS (VmRSS) of the generator 2 s after every user holds "
        "a connection and has made its first request (counted by nginx), medians. KiB per user: "
        "the least-squares slope of RSS over users (between consecutive sizes in brackets). "
        f"Hopper spawns all users in one second, Locust at {cfg['locust_spawn_rate']:,} per "
        "second. Connections open: what nginx counted at that moment (a generator may close "
        "some idle connections between requests).",
        "",
        f"| Generator | RSS MiB at {head} users | **KiB per user** (pairwise) "
        "| s until all users made a request | connections open |",
        "|---|--:|--:|--:|--:|",
    ]
    for t in cfg["tools"]:
        s = summary.get(t)
        if not s or not s["rss_kib"]:
            lines.append(f"| {labels[t]} | failed | | | |")
            continue
        rss = " / ".join(fmt_mib(s["rss_kib"].get(str(u), s["rss_kib"].get(u))) for u in sizes)
        pair = ", ".join(f"{v:.2f}" for v in s["kib_per_user_pairwise"].values())
        secs = " / ".join(
            f"{v:.1f}" for v in (s["seconds_to_all"].get(str(u), s["seconds_to_all"].get(u))
                                 for u in sizes) if v is not None)
        kpu = "–" if s["kib_per_user"] is None else f"{s['kib_per_user']:.2f}"
        conns = s.get("connections") or {}
        open_ = " / ".join(fmt_int(conns.get(str(u), conns.get(u))) for u in sizes)
        lines.append(f"| {labels[t]} | {rss} | **{kpu}** ({pair}) | {secs} | {open_} |")
    failed = [r for r in sec["runs"] if not r["ok"]]
    for r in failed:
        lines.append("")
        lines.append(f"Failed: {labels[r['tool']]} with {r['users']:,} users (repeat "
                     f"{r['repeat'] + 1}): {_first_line(r.get('error'))}")
    lines.append("")
    return lines


def render_cluster(sec: dict) -> list[str]:
    cfg, summary, labels = sec["config"], sec["summary"], sec["labels"]
    lines = [
        f"### Cluster: a master and {cfg['workers']} workers, {cfg['users']} users, no wait, "
        "GET /fast",
        "",
        f"{cfg['repeats']} interleaved repeat(s) of {cfg['duration']} s; medians. CPU and "
        "requests per CPU-second count all three processes (master and both workers, whole "
        "runs); requests are the master's Aggregated row.",
        "",
        "| Setup | Requests | Req/s | **Req per CPU-s** (min–max) | CPU s (user + sys) "
        "| Peak RSS MiB (3 processes) | Failures |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for t in cfg["tools"]:
        s = summary.get(t)
        if not s:
            lines.append(f"| {labels[t]} | failed | | | | | |")
            continue
        lines.append(
            f"| {labels[t]} | {fmt_int(s['requests'])} | {fmt_int(s['rps'])} "
            f"| **{fmt_int(s['req_per_cpu_s'])}** ({fmt_k(s['req_per_cpu_s_min'])}–"
            f"{fmt_k(s['req_per_cpu_s_max'])}) "
            f"| {s['cpu_s']:.2f} ({s['user_s']:.2f} + {s['sys_s']:.2f}) "
            f"| {fmt_mib(s['peak_rss_kib'])} | {fmt_int(s['failures'])} |")
    for r in sec["runs"]:
        if not r["ok"]:
            lines += ["", f"Failed: {labels[r['tool']]} (repeat {r['repeat'] + 1}): "
                          f"{_first_line(r.get('error'))}"]
    lines.append("")
    return lines


def _exact(r: dict) -> str:
    if r.get("exact_totals") is None:
        return "no summary" if r.get("master_requests") is None else "?"
    if r["exact_totals"]:
        return "yes"
    return f"no ({fmt_int(r.get('master_requests'))} of {fmt_int(r['sent']['requests'])})"


def render_master(sec: dict) -> list[str]:
    cfg, labels = sec["config"], sec["labels"]
    kinds = cfg["tools"]
    lines = [
        "### Master capacity: simulated workers",
        "",
        "Each simulated worker (`simulated_workers`) sends a heartbeat every second and a stats "
        "report every 3 s with every request name (10 requests per name per report, about 1 % "
        "failures; Hopper's HDR histograms too when its master is Hopper, as Hopper workers "
        "do). The master is headless and runs one user per worker. CPU: percent of one core "
        f"over {cfg['windows']} window(s) of {cfg['window_s']:g} s, starting "
        f"{cfg['settle_s']:g} s after all users were spawned (median of the windows). Exact: "
        "the master's final Aggregated requests and failures equal the sums of every report the "
        "simulator sent (no summary: the master did not quit within "
        "40 s of SIGTERM and was killed). Missing: workers the master declared missing (it "
        "read their heartbeats more than 3 s late) before it was stopped: the master could "
        "not keep up.",
        "",
        "| Names | Workers | " + " | ".join(
            f"{labels[k].split(' (')[0]} CPU % | RSS MiB | exact" for k in kinds) + " |",
        "|--:|--:|" + "--:|--:|---|" * len(kinds),
    ]
    cells: dict = {}
    for r in sec["runs"]:
        cells[(r["names"], r["asked_workers"], r["tool"])] = r
    notes = []
    for names in cfg["names"]:
        for n in cfg["workers"]:
            row = [str(names), f"{n:,}"]
            for k in kinds:
                r = cells.get((names, n, k))
                if r is None:
                    row += ["–", "–", "–"]
                    continue
                mark = "" if r["workers"] == r["asked_workers"] else f" (at {r['workers']:,})"
                if not r["ok"]:
                    row += [f"failed{mark}", "–", "–"]
                    notes.append(f"{labels[k]}, {r['workers']:,} workers × {names} names: "
                                 f"{_first_line(r.get('error'))}")
                    continue
                flags = ""
                if not r.get("all_spawned", True):
                    flags += " (ramp unfinished)"
                if r.get("missing_warnings"):
                    flags += f" ({r['missing_warnings']:,} missing)"
                row += [f"**{r['cpu_pct']:.1f}**{mark}{flags}", fmt_mib(r["rss_kib"]),
                        _exact(r)]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for k, limit in cfg.get("limits", {}).items():
        if limit is not None and limit < max(cfg["workers"]):
            lines.append(
                f"{labels[k]}: {max(cfg['workers']):,} workers do not fit. The open-files hard "
                f"limit is {cfg['nofile_hard_limit']:,} and Hopper's master holds a "
                f"descriptor per worker, so the largest N that fits, {limit:,}, was measured "
                "instead.")
            lines.append("")
    for n in notes:
        lines += [f"Failed: {n}", ""]
    sim = [r.get("simulator_cpu_pct") for r in sec["runs"] if r["ok"]]
    if sim:
        lines += [f"The simulator itself used {min(sim):.0f}–{max(sim):.0f} % of a core in "
                  "the windows (one thread).", ""]
    return lines


def render_accuracy(sec: dict) -> list[str]:
    cfg, summary, labels = sec["config"], sec["summary"], sec["labels"]
    lines = [
        f"### Accuracy: {cfg['users']} users against a target with known delays",
        "",
        f"Delays: {cfg['delays']}. True values: the delays the target measured itself "
        "(nearest-rank percentiles of every delay it served in the run). Each cell: the tool's "
        f"value in ms and its error against the truth; medians of {cfg['repeats']} run(s) of "
        f"{cfg['duration']} s.",
        "",
        "| Generator | p50 ms (error) | p90 ms (error) | p99 ms (error) | true p50 / p90 / p99 ms "
        "| requests |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for t in cfg["tools"]:
        s = summary.get(t)
        if not s:
            lines.append(f"| {labels[t]} | failed | | | | |")
            continue
        truth = " / ".join(fmt_ms(s[f"true_{q}_ms"]) for q in ("p50", "p90", "p99"))
        rows = [("", "")]
        if t == "hopper":
            rows = [(" precise (HDR)", ""), (" approximated", "_approx")]
        for suffix, key in rows:
            if s.get(f"p50{key}_ms") is None:
                continue
            cells = " | ".join(f"{fmt_ms(s[f'{q}{key}_ms'])} ({fmt_pct(s[f'{q}{key}_err'])})"
                               for q in ("p50", "p90", "p99"))
            lines.append(f"| {labels[t]}{suffix} | {cells} | {truth} | {fmt_int(s['requests'])} |")
    for r in sec["runs"]:
        if not r["ok"]:
            lines += ["", f"Failed: {labels[r['tool']]} (repeat {r['repeat'] + 1}): "
                          f"{_first_line(r.get('error'))}"]
    lines.append("")
    return lines


RENDERERS = {
    "throughput": render_throughput,
    "idle": render_idle,
    "cluster": render_cluster,
    "master": render_master,
    "accuracy": render_accuracy,
}


# ---------------------------------------------------------------------------------------------
# Goals
# ---------------------------------------------------------------------------------------------


def goals(report: dict) -> list[dict]:
    """Each goal of the issue with what was measured and whether it is met (None: not
    measured in this run)."""
    secs = report["sections"]
    out = []

    def add(goal, measured, met, note=""):
        out.append({"goal": goal, "measured": measured, "met": met, "note": note})

    tp = secs.get("throughput", {}).get("summary", {})
    h = tp.get("hopper", {}).get("req_per_cpu_s")
    add("≥ 110k requests per CPU-second (throughput)", fmt_int(h),
        None if h is None else h >= 110_000)
    for other, factor, label in (("wrk", 0.8, "wrk"), ("goose", 2.5, "Goose"),
                                 ("locust-fast", 10.0, "Locust FastHttpUser")):
        o = tp.get(other, {}).get("req_per_cpu_s")
        r = arith.ratio(h, o)
        add(f"≥ {factor:g}× {label} (requests per CPU-second)", fmt_x(r),
            None if r is None else r >= factor)
    idle = secs.get("idle", {}).get("summary", {}).get("hopper", {})
    k = idle.get("kib_per_user")
    add("≤ 4 KB RSS per idle user", "–" if k is None else f"{k:.2f} KiB",
        None if k is None else k * 1024 <= 4000)
    master = secs.get("master", {}).get("runs", [])

    def cell(n, names):
        rs = [r for r in master if r["tool"] == "hopper" and r["asked_workers"] == n
              and r["names"] == names and r["ok"]]
        return rs[0] if rs else None

    def kept_up(r) -> bool:
        # A master keeps up when it finished the ramp, declared no live worker missing and
        # its totals are exact; its CPU figure means nothing otherwise (it is behind).
        return (r.get("all_spawned", True) and not r.get("missing_warnings")
                and bool(r.get("exact_totals")))

    def state(r) -> str:
        if kept_up(r):
            return "exact"
        bits = []
        if not r.get("all_spawned", True):
            bits.append("ramp unfinished")
        if r.get("missing_warnings"):
            bits.append(f"{r['missing_warnings']:,} declared missing")
        bits.append(f"totals {_exact(r)}")
        return "behind: " + ", ".join(bits)

    c = cell(1000, 100)
    add("Hopper master, 1,000 workers × 100 names: ≤ 5 % of one core, exact stats",
        "–" if c is None else f"{c['cpu_pct']:.1f} %, {state(c)}",
        None if c is None else (c["cpu_pct"] <= 5.0 and kept_up(c)))
    big = [r for r in master if r["tool"] == "hopper" and r["asked_workers"] == 10000 and r["ok"]]
    if big:
        worst = max(big, key=lambda r: (not kept_up(r), r["cpu_pct"]))
        at = "" if worst["workers"] == 10000 else f" at {worst['workers']:,} workers"
        add("Hopper master, 10,000 workers: within one core",
            f"{worst['cpu_pct']:.1f} %{at} × {worst['names']} names, {state(worst)}",
            worst["cpu_pct"] <= 100.0 and kept_up(worst),
            "" if worst["workers"] == 10000 else
            "10,000 do not fit the open-files limit; the largest N that fits was measured")
    else:
        add("Hopper master, 10,000 workers: within one core", "–", None)
    acc = secs.get("accuracy", {}).get("summary", {}).get("hopper", {})
    e = acc.get("p99_err")
    add("Hopper precise p99 within 1 % of the true value", fmt_pct(e),
        None if e is None else abs(e) <= 0.01)
    return out


def render_goals(report: dict) -> list[str]:
    lines = ["### The goals", "", "| Goal | Measured | Met |", "|---|--:|:-:|"]
    for g in goals(report):
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        note = f" ({g['note']})" if g["note"] else ""
        lines.append(f"| {g['goal']} | {g['measured']}{note} | {met} |")
    lines.append("")
    return lines


def render_results(report: dict) -> str:
    """The markdown of the marked results section of docs/benchmarks.md."""
    mach = report["machine"]
    lines = [
        f"Measured {mach['date']} with `{report['command']}` "
        f"({report.get('elapsed_s', 0) / 60:.1f} minutes; load average "
        f"{' / '.join(f'{x:.2f}' for x in mach.get('loadavg_start', []))} at the start, "
        f"{' / '.join(f'{x:.2f}' for x in report.get('loadavg_end', []))} at the end).",
        "",
        f"Machine: {mach['nproc']} cores ({mach['cpu_model']}), {mach['memory_gib']} GiB, "
        f"{mach['os']}, kernel {mach['kernel']}; open files hard limit "
        f"{mach.get('nofile_hard_limit', '?'):,}; Hopper at {mach['hopper_commit']} built by "
        f"{mach['rustc']}; Python {mach['python']}.",
        "",
    ]
    lines += render_goals(report)
    for name, sec in report["sections"].items():
        lines += RENDERERS[name](sec)
        png = report.get("plots", {}).get(name)
        if png:
            lines += [f"![{name}]({png})", ""]
    lines += ["Commands (PORT: the private nginx's port):", "", "```text",
              report["command"]]
    for name, sec in report["sections"].items():
        for tool, cmd in sec.get("commands", {}).items():
            lines.append(f"  [{name}/{tool}] {cmd}")
    lines += ["```"]
    return "\n".join(lines) + "\n"


def update_doc(markdown: str, doc: Path) -> None:
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
