"""Regenerates the console fixtures from real Locust 2.47 (run with Locust's virtualenv Python).

The same requests are logged in `console.rs`'s tests; the fixtures are what Locust's
stats_logger prints for them, so the Rust tables are compared byte for byte.
"""

import io
import logging
import os
import time

import locust.stats as ls
from locust.exception import CatchResponseError
from requests.exceptions import HTTPError

CLOCK = [1700000000.0]
time.time = lambda: CLOCK[0]

LONG = "/a/very/long/name/that/goes/on/and/on/beyond/the/seventy-six/character/name/column"
EVENTS = [
    (1700000001.2, "GET", "/", 12.3456, 100, None),
    (1700000001.7, "GET", "/", 145.0, 100, None),
    (1700000002.1, "GET", "/", 3.5, 120, None),
    (1700000003.4, "GET", "/", None, 0, None),
    (1700000004.0, "POST", "/login", 2500.0, 0, CatchResponseError("bad body")),
    (1700000005.5, "POST", "/login", 58760.4, 10, None),
    (1700000006.25, "GET", "/missing", 1.86, 0, HTTPError("404 Client Error: Not Found for url: /missing")),
    (1700000007.0, "GET", "/missing", 5.463743000007071, 0, HTTPError("404 Client Error: Not Found for url: /missing")),
    (1700000008.9, "WS", "chat", 0.4, 5, None),
    (1700000012.3, "GET", LONG, 33.0, 0, None),
]
for s in range(10):
    EVENTS.append((1700000005.5 + s, "GET", "/", 20.0 + s, 50, None))
EVENTS.append((1700000015.5, "GET", "/", 7.0, 0, None))
EVENTS.sort(key=lambda e: e[0])


def build():
    stats = ls.RequestStats()
    for t, method, name, rt, length, err in EVENTS:
        CLOCK[0] = t
        stats.log_request(method, name, rt, length)
        if err is not None:
            stats.log_error(method, name, err)
    return stats


def capture(fn, *args):
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(message)s"))
    ls.console_logger.handlers = [handler]
    ls.console_logger.setLevel(logging.INFO)
    ls.console_logger.propagate = False
    fn(*args)
    return buf.getvalue()


out_dir = os.path.dirname(os.path.abspath(__file__))
stats = build()
for width in (80, 20, 2):
    ls.STATS_NAME_WIDTH = width
    files = {
        f"console_stats_current_w{width}.txt": capture(ls.print_stats, stats, True),
        f"console_stats_total_w{width}.txt": capture(ls.print_stats, stats, False),
        f"console_percentiles_w{width}.txt": capture(ls.print_percentile_stats, stats),
        f"console_errors_w{width}.txt": capture(ls.print_error_report, stats),
    }
    for name, text in files.items():
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)

ls.STATS_NAME_WIDTH = 80
CLOCK[0] = 1700000000.0
empty = ls.RequestStats()
with open(os.path.join(out_dir, "console_stats_empty.txt"), "w") as f:
    f.write(capture(ls.print_stats, empty, True))
with open(os.path.join(out_dir, "console_percentiles_empty.txt"), "w") as f:
    f.write(capture(ls.print_percentile_stats, empty))
