"""The benchmark's plots, drawn with matplotlib from a results JSON written by bench/run.py.

    bench/.venv/bin/python bench/plots.py docs/bench/results.json docs/bench

Runs in the benchmark's virtualenv (matplotlib is installed there with Locust), separately
from run.py, which needs only the standard library. Writes one PNG per scenario present in
the results and prints {scenario: file name} as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, out: Path, name: str, made: dict) -> None:
    fig.tight_layout()
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made[name] = path.name


def throughput(sec: dict, cluster: dict | None, out: Path, made: dict) -> None:
    s, labels = sec["summary"], sec["labels"]
    tools = [t for t in sec["config"]["tools"] if s.get(t)]
    tools.sort(key=lambda t: s[t]["req_per_cpu_s"])
    vals = [s[t]["req_per_cpu_s"] / 1000 for t in tools]
    lo = [(s[t]["req_per_cpu_s"] - s[t]["req_per_cpu_s_min"]) / 1000 for t in tools]
    hi = [(s[t]["req_per_cpu_s_max"] - s[t]["req_per_cpu_s"]) / 1000 for t in tools]
    names = [labels[t] for t in tools]
    colors = ["#d62728" if t == "hopper" else "#7f7f7f" for t in tools]
    if cluster and cluster["summary"]:
        cs = cluster["summary"]
        for t in cluster["config"]["tools"]:
            if cs.get(t):
                names.append(f"{cluster['labels'][t].split(' (')[0]}: master + 2 workers")
                vals.append(cs[t]["req_per_cpu_s"] / 1000)
                lo.append((cs[t]["req_per_cpu_s"] - cs[t]["req_per_cpu_s_min"]) / 1000)
                hi.append((cs[t]["req_per_cpu_s_max"] - cs[t]["req_per_cpu_s"]) / 1000)
                colors.append("#ff9896" if t == "hopper" else "#c7c7c7")
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.5))
    ax.barh(names, vals, xerr=[lo, hi], color=colors, capsize=3)
    for i, v in enumerate(vals):
        # Right of the error bar, so the two never overlap.
        ax.text(v + hi[i] + max(vals) * 0.01, i, f"{v:.1f}k", va="center", fontsize=8)
    ax.set_xlabel("requests per CPU-second (thousands; median and min–max of the repeats)")
    ax.set_title(f"Throughput: {sec['config']['users']} users, no wait, GET /fast from nginx")
    ax.set_xlim(0, max(vals) * 1.18)
    _save(fig, out, "throughput", made)


def idle(sec: dict, out: Path, made: dict) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for t in sec["config"]["tools"]:
        pts = sec["summary"].get(t, {}).get("rss_kib") or {}
        if not pts:
            continue
        xs = sorted(int(k) for k in pts)
        ys = [pts[str(x)] / 1024 if str(x) in pts else pts[x] / 1024 for x in xs]
        k = sec["summary"][t]["kib_per_user"]
        label = sec["labels"][t] + ("" if k is None else f" ({k:.1f} KiB/user)")
        ax.plot(xs, ys, marker="o", label=label, color="#d62728" if t == "hopper" else None)
    ax.set_xlabel("idle users (10 s wait between requests)")
    ax.set_ylabel("RSS of the generator, MiB")
    ax.set_title("Memory of mostly idle users")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, out, "idle", made)


def master(sec: dict, out: Path, made: dict) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = {20: "--", 100: "-"}
    for kind in sec["config"]["tools"]:
        for names in sec["config"]["names"]:
            rs = sorted((r for r in sec["runs"] if r["tool"] == kind and r["names"] == names
                         and r["ok"]), key=lambda r: r["workers"])
            if not rs:
                continue
            color = "#d62728" if kind == "hopper" else "#1f77b4"
            ax.plot([r["workers"] for r in rs], [r["cpu_pct"] for r in rs],
                    linestyle=styles.get(names, "-"), color=color,
                    label=f"{sec['labels'][kind].split(' (')[0]}, {names} names")
            for r in rs:
                # Filled: the master kept up (ramp done, no worker declared missing, exact
                # totals); open: it fell behind, and its CPU figure is a floor.
                kept = (r.get("all_spawned", True) and not r.get("missing_warnings")
                        and bool(r.get("exact_totals")))
                ax.plot([r["workers"]], [r["cpu_pct"]], marker="o", color=color,
                        markerfacecolor=color if kept else "white")
    ax.axhline(100, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("simulated workers (heartbeat 1 s, stats every 3 s)")
    ax.set_ylabel("master CPU, % of one core")
    ax.set_title("Master capacity (open markers: the master fell behind)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    _save(fig, out, "master", made)


def accuracy(sec: dict, out: Path, made: dict) -> None:
    s, labels = sec["summary"], sec["labels"]
    rows = []
    for t in sec["config"]["tools"]:
        if not s.get(t):
            continue
        rows.append((labels[t] + (" (HDR)" if t == "hopper" else ""), ""))
        if t == "hopper":
            rows[-1] = (labels[t] + " precise (HDR)", "", t)
            rows.append((labels[t] + " approximated", "_approx", t))
        else:
            rows[-1] = (rows[-1][0], "", t)
    qs = ("p50", "p90", "p99")
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    height = 0.25
    for j, q in enumerate(qs):
        vals = [(s[t].get(f"{q}{key}_err") or 0) * 100 for _, key, t in rows]
        ax.barh([i + (j - 1) * height for i in range(len(rows))], vals, height=height, label=q)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r[0] for r in rows])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("error against the target's own measurement, % (symmetric log scale)")
    ax.set_title("Percentile accuracy: 60 % 1 ms, 35 % 10 ms, 5 % 100 ms")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    _save(fig, out, "accuracy", made)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(argv[0]).read_text())
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    secs = report["sections"]
    made: dict = {}
    if "throughput" in secs:
        throughput(secs["throughput"], secs.get("cluster"), out, made)
    if "idle" in secs:
        idle(secs["idle"], out, made)
    if "master" in secs:
        master(secs["master"], out, made)
    if "accuracy" in secs:
        accuracy(secs["accuracy"], out, made)
    print(json.dumps(made))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
