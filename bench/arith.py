"""The benchmark's arithmetic: medians over repeats, requests per CPU-second, ratios to a
reference tool, the slope of memory over users, relative errors. Pure functions, tested in
bench/test_run.py.
"""

from __future__ import annotations

from typing import Optional

REFERENCE_TOOL = "wrk"


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
    "p50_ms", "p90_ms", "p99_ms", "peak_rss_kib", "user_us_per_req", "sys_us_per_req",
    "p50_approx_ms", "p90_approx_ms", "p99_approx_ms",
)


def summarize(runs: list[dict], reference: Optional[str] = REFERENCE_TOOL,
              fields: tuple = MEDIAN_FIELDS) -> dict:
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
        for f in fields:
            vals = [r[f] for r in rs if r.get(f) is not None]
            s[f] = median(vals) if vals else None
        per = [r["req_per_cpu_s"] for r in rs if r.get("req_per_cpu_s") is not None]
        s["req_per_cpu_s_min"] = min(per) if per else None
        s["req_per_cpu_s_max"] = max(per) if per else None
        summary[tool] = s
    ref = summary.get(reference, {}).get("req_per_cpu_s") if reference else None
    ref_by_repeat = {
        r["repeat"]: r.get("req_per_cpu_s") for r in by_tool.get(reference, []) if reference
    }
    for tool, s in summary.items():
        s["ratio"] = ratio(s["req_per_cpu_s"], ref)
        paired = [
            r["req_per_cpu_s"] / ref_by_repeat[r["repeat"]]
            for r in by_tool[tool]
            if r["repeat"] in ref_by_repeat and r.get("req_per_cpu_s") is not None
            and ref_by_repeat[r["repeat"]]
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




def slope(points: list[tuple[float, float]]) -> Optional[float]:
    """The least-squares slope of y over x; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx


def rel_error(value: Optional[float], true: Optional[float]) -> Optional[float]:
    """(value - true) / true, e.g. 0.01 for 1 % too high; None when either is missing."""
    if value is None or not true:
        return None
    return (value - true) / true


def cpu_percent(ticks_before: int, ticks_after: int, clk_tck: int, wall_s: float) -> float:
    """Percent of one core a process used: its CPU ticks over a wall-clock window."""
    if wall_s <= 0:
        raise ValueError(f"empty window ({wall_s} s)")
    return (ticks_after - ticks_before) / clk_tck / wall_s * 100.0
