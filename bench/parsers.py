"""Parsers of what the benchmarked programs print: each returns a dict of numbers or raises
ParseError naming the program and showing the end of its output.

Every parser is pure (text in, dict out) and tested against real captured output in
bench/test_parsers.py and bench/test_run.py. Times are milliseconds throughout.
"""

from __future__ import annotations

import json
import re
from typing import Optional

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
    if 50.0 not in pct or 90.0 not in pct or 99.0 not in pct:
        raise ParseError(tool, "no 50%, 90% and 99% in the latency distribution", text)
    return {
        "requests": requests,
        "failures": non_2xx + socket_errors,
        "non_2xx": non_2xx,
        "socket_errors": socket_errors,
        "rps": rps,
        "duration_s": duration_s,
        "p50_ms": pct[50.0],
        "p90_ms": pct[90.0],
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
    (p50, p90, p99 in whole ms). The last summary in the output counts."""
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
        out["p90_ms"] = float(cols["90%"])
        out["p99_ms"] = float(cols["99%"])
    except (KeyError, ValueError) as e:
        raise ParseError(tool, f"no numeric 50%/90%/99% columns ({e})", text) from None
    out["percentile_source"] = "approximated (Locust's rounded buckets)"
    return out


def parse_locust(text: str) -> dict:
    return parse_locust_style(text, "locust")


def parse_hopper(text: str) -> dict:
    """Hopper's final summary: Locust's tables, plus its precise (HDR) percentile table, whose
    p50/p90/p99 (ms, three significant digits) are the ones reported; the approximated ones
    are kept as p50_approx_ms and so on."""
    tool = "hopper"
    out = parse_locust_style(text, tool)
    lines = text.splitlines()
    j = _last_index(lines, lambda l: l.strip().startswith("Response time percentiles (precise"))
    if j is None or j + 1 >= len(lines):
        raise ParseError(tool, "no precise (HDR) percentile table", text)
    header, row = _table_rows(lines, j + 1, tool, "precise percentile", text)
    cols = _percentile_columns(header, row, tool, "precise percentile", text)
    try:
        for q in ("p50", "p90", "p99"):
            out[f"{q}_approx_ms"] = out[f"{q}_ms"]
        for q in ("p50", "p90", "p99"):
            out[f"{q}_ms"] = float(cols[q])
    except (KeyError, ValueError) as e:
        raise ParseError(tool, f"no numeric p50/p99 in the precise table ({e})", text) from None
    out["percentile_source"] = "precise (HDR)"
    return out


def _last_json_object(text: str, tool: str, required: tuple) -> dict:
    """The last line of text that is a JSON object with all the required keys."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and all(k in obj for k in required):
            return obj
    raise ParseError(tool, f"no JSON line with {', '.join(required)}", text)


HYPER_BASELINE_KEYS = ("requests", "failures", "rps", "p50_ms", "p90_ms", "p99_ms")


def parse_hyper_baseline(text: str) -> dict:
    """The JSON line hopper-http's hyper_baseline example prints: requests, failures, req/s
    and HDR percentiles in ms."""
    tool = "hyper_baseline"
    obj = _last_json_object(text, tool, HYPER_BASELINE_KEYS)
    for k in ("requests", "failures"):
        if not isinstance(obj[k], int) or obj[k] < 0:
            raise ParseError(tool, f"{k} is {obj[k]!r}, not a count", text)
    try:
        return {k: float(obj[k]) if k.endswith("_ms") or k == "rps" else obj[k]
                for k in HYPER_BASELINE_KEYS} | {"percentile_source": "HDR"}
    except (TypeError, ValueError) as e:
        raise ParseError(tool, f"a figure is not a number ({e})", text) from None


SIMULATOR_KEYS = ("workers", "connected", "acked", "reports", "requests", "failures")


def parse_simulator(text: str) -> dict:
    """The JSON line simulated_workers prints when it ends: what it sent."""
    tool = "simulated_workers"
    obj = _last_json_object(text, tool, SIMULATOR_KEYS)
    for k in SIMULATOR_KEYS:
        if not isinstance(obj[k], int) or obj[k] < 0:
            raise ParseError(tool, f"{k} is {obj[k]!r}, not a count", text)
    return obj


def parse_delay_stats(text: str) -> dict:
    """The delay target's /__stats JSON: the delays it served (ms) and their percentiles."""
    tool = "delay_target"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(tool, f"/__stats is not JSON ({e})", text) from None
    if not isinstance(obj, dict) or "count" not in obj:
        raise ParseError(tool, "/__stats has no count", text)
    if obj["count"] == 0:
        raise ParseError(tool, "the target served no delayed request", text)
    out = {"count": obj["count"], "by_delay_ms": obj.get("by_delay_ms", {})}
    for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "min_ms", "max_ms"):
        if not isinstance(obj.get(k), (int, float)):
            raise ParseError(tool, f"/__stats has no number for {k}", text)
        out[k] = float(obj[k])
    return out


def parse_stub_status(text: str) -> dict:
    """nginx's stub_status page: active connections and the accepted/handled/requests totals.

        Active connections: 291
        server accepts handled requests
         16630948 16630948 31070465
        Reading: 6 Writing: 179 Waiting: 106
    """
    tool = "nginx stub_status"
    m = re.search(r"Active connections:\s+(\d+)", text)
    totals = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", text, re.M)
    if not m or not totals:
        raise ParseError(tool, "not a stub_status page", text)
    return {
        "active": int(m.group(1)),
        "accepts": int(totals.group(1)),
        "handled": int(totals.group(2)),
        "requests": int(totals.group(3)),
    }


def all_users_spawned(text: str) -> Optional[int]:
    """The total of the last "All users spawned: {...} (N total users)" log line (Locust and
    Hopper log the same line), or None before there is one."""
    found = re.findall(r"All users spawned: .*\((\d+) total users\)", text)
    return int(found[-1]) if found else None


def _goose_rows(lines: list[str], start: int, header_word: str, tool: str, text: str):
    """(header cells, the row that stands for all requests) of the Goose table whose header
    (a line starting with "Name" and containing header_word) is the first one at or after
    start: the Aggregated row, or the only row when there is one name (Goose prints no
    Aggregated row then)."""
    h = next((i for i in range(start, len(lines))
              if lines[i].strip().startswith("Name") and header_word in lines[i]), None)
    if h is None:
        raise ParseError(tool, f"no table with a {header_word!r} column", text)
    header = [c.strip() for c in lines[h].split("|")]
    rows = []
    for line in lines[h + 2:]:
        s = line.strip()
        if not s or (s.startswith("---") and "+" not in s):
            if rows:
                break
            continue
        if s.startswith("---"):
            continue
        cells = [c.strip() for c in s.split("|")]
        if len(cells) != len(header):
            break
        rows.append(cells)
    agg = [r for r in rows if r[0] == "Aggregated"]
    if agg:
        return header, agg[-1], h
    if len(rows) == 1:
        return header, rows[0], h
    raise ParseError(tool, f"the {header_word!r} table has {len(rows)} rows and no Aggregated row",
                     text)


def _goose_int(cell: str) -> int:
    return int(cell.split()[0].replace(",", ""))


def parse_goose(text: str) -> dict:
    """Goose's final metrics: the request table (requests, failures, req/s) and its "Slowest
    page load within specified percentile" table (50%, 99% in ms; Goose reports no 90%).
    The last PER REQUEST METRICS section counts."""
    tool = "goose"
    lines = text.splitlines()
    start = _last_index(lines, lambda l: "=== PER REQUEST METRICS ===" in l)
    if start is None:
        raise ParseError(tool, "no PER REQUEST METRICS section", text)
    header, row, at = _goose_rows(lines, start, "# reqs", tool, text)
    cols = dict(zip(header, row))
    try:
        out = {
            "requests": _goose_int(cols["# reqs"]),
            "failures": _goose_int(cols["# fails"]),
            "rps": float(cols["req/s"].replace(",", "")),
        }
    except (KeyError, ValueError, IndexError) as e:
        raise ParseError(tool, f"unexpected request row {row} ({e})", text) from None
    p = next((i for i in range(at, len(lines)) if "Slowest page load within" in lines[i]), None)
    if p is None:
        raise ParseError(tool, "no percentile table", text)
    header, row, _ = _goose_rows(lines, p, "50%", tool, text)
    cols = dict(zip(header, row))
    try:
        out["p50_ms"] = float(cols["50%"].replace(",", ""))
        out["p99_ms"] = float(cols["99%"].replace(",", ""))
    except (KeyError, ValueError) as e:
        raise ParseError(tool, f"no numeric 50%/99% ({e})", text) from None
    out["p90_ms"] = None
    out["percentile_source"] = "Goose (no 90%)"
    return out


# oha cancels the requests in flight when -z runs out and counts them as errors with this
# text; they are the end of the run, not failures.
OHA_DEADLINE_ERROR = "aborted due to deadline"


def parse_oha(text: str) -> dict:
    """oha's --output-format json report: responses by status, errors, requests/s and latency
    percentiles (seconds in the JSON, ms here)."""
    tool = "oha"
    start = text.find("{")
    try:
        obj = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError as e:
        raise ParseError(tool, f"the report is not JSON ({e})", text) from None
    if not isinstance(obj, dict) or "summary" not in obj or "latencyPercentiles" not in obj:
        raise ParseError(tool, "no summary and latencyPercentiles in the report", text)
    statuses = obj.get("statusCodeDistribution") or {}
    errors = obj.get("errorDistribution") or {}
    try:
        responses = sum(int(v) for v in statuses.values())
        bad_status = sum(int(v) for k, v in statuses.items() if not 200 <= int(k) < 400)
        deadline = sum(int(v) for k, v in errors.items() if OHA_DEADLINE_ERROR in k)
        other_errors = sum(int(v) for k, v in errors.items() if OHA_DEADLINE_ERROR not in k)
        pct = obj["latencyPercentiles"]

        def ms(key: str) -> Optional[float]:
            v = pct.get(key)
            return None if v is None else float(v) * 1000.0

        out = {
            "requests": responses + other_errors,
            "failures": bad_status + other_errors,
            "aborted_at_deadline": deadline,
            "rps": responses / float(obj["summary"]["total"]),
            "p50_ms": ms("p50"),
            "p90_ms": ms("p90"),
            "p99_ms": ms("p99"),
            "percentile_source": "oha (exact, per request)",
        }
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise ParseError(tool, f"unexpected report ({e})", text) from None
    if out["p50_ms"] is None or out["p99_ms"] is None:
        raise ParseError(tool, "no p50 and p99 latency", text)
    return out
