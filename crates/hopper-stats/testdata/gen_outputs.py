"""Regenerates the web JSON, CSV, --json and HTML report fixtures from real Locust 2.47.

Run with Locust's virtualenv Python from any directory:

    PYTHONHASHSEED=0 /path/to/locust-venv/bin/python testdata/gen_outputs.py

The requests below are logged the same way by `src/scenario.rs` (a test-only module); the
fixtures are what Locust's own code (Flask routes through the test client, the CSV writer, the
`--json` printer, the HTML report template) produces for them, so the Rust builders are compared
byte for byte. CSV fixtures end in `.csv.txt` because the repository ignores `*.csv`.
"""

import contextlib
import io
import json
import os
import re
import tempfile
import time

import locust.stats as ls
from locust import HttpUser, TaskSet, task
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.html import get_html_report, process_html_filename
from locust.runners import LocalRunner, MasterRunner, WorkerNode
from locust.util.date import format_duration
from locust.web import WebUI
from requests.exceptions import HTTPError

CLOCK = [1700000000.0]
time.time = lambda: CLOCK[0]

OUT = os.path.dirname(os.path.abspath(__file__))

NOT_FOUND = HTTPError("404 Client Error: Not Found for url: /missing")
# Names and texts that exercise CSV quoting, JSON escaping and the report's HTML escaping.
SEARCH = '/search?q=a,b "c"'
CAFE = "/caf\u00e9/<b>&'x'"
MULTILINE = 'line one\nline two, with "quotes"'

# (time, method, name, response time, length, error); method "HIST" appends a history point
# with `name` as the user count; method "FAIL" logs a failure without a request.
EVENTS = [
    (1700000001.2, "GET", "/", 12.3456, 100, None),
    (1700000001.7, "GET", "/", 145.0, 100, None),
    (1700000002.1, "GET", "/", 3.5, 120, None),
    (1700000003.4, "GET", "/", None, 0, None),
    (1700000004.0, "POST", "/login", 2500.0, 0, CatchResponseError("bad body")),
    (1700000005.5, "POST", "/login", 58760.4, 10, None),
    (1700000006.25, "GET", "/missing", 1.86, 0, NOT_FOUND),
    (1700000007.0, "GET", "/missing", 5.463743000007071, 0, NOT_FOUND),
    (1700000008.9, "WS", "chat", 0.4, 5, None),
    (1700000009.3, "GET", SEARCH, 8.25, 42, None),
    (1700000009.6, "GET", CAFE, 17.0, 3, MULTILINE),
    (1700000010.1, "FAIL", "/only-fail", None, 0, "ConnectionError('refused')"),
    (1700000010.4, "GET", "/async", None, 0, None),
    (1700000012.3, "GET", "/long", 33.0, 0, None),
]
for s in range(10):
    EVENTS.append((1700000005.5 + s, "GET", "/", 20.0 + s, 50, None))
EVENTS.append((1700000015.5, "GET", "/", 7.0, 0, None))
EVENTS.append((1700000004.5, "HIST", 3, None, 0, None))
EVENTS.append((1700000009.9, "HIST", 5, None, 0, None))
EVENTS.append((1700000013.2, "HIST", 7, None, 0, None))
EVENTS.sort(key=lambda e: e[0])

TRACEBACK = '  File "/app/locustfile.py", line 12, in checkout\n    raise ValueError("no, \\"stock\\"")\n'
# When the outputs are read.
NOW = 1700000016.2
USER_COUNT = 7


class Browse(TaskSet):
    @task(3)
    def page(self):
        pass

    @task
    def stop(self):
        self.interrupt()


class WebUser(HttpUser):
    host = "https://example.com"
    tasks = {Browse: 2}

    @task
    def index(self):
        pass


def build(runner_class):
    CLOCK[0] = 1700000000.0
    env = Environment(
        user_classes=[WebUser],
        host="https://example.com/a?b=1&c=<d>",
        locustfile="locustfile.py",
        profile="nightly 'run'",
    )
    if runner_class is MasterRunner:
        runner = env.create_master_runner("127.0.0.1", 55571)
    else:
        runner = env.create_local_runner()
    stats = runner.stats
    for t, method, name, rt, length, err in EVENTS:
        CLOCK[0] = t
        if method == "HIST":
            type(runner).user_count = property(lambda self, n=name: n)
            ls.update_stats_history(runner)
            continue
        if method != "FAIL":
            stats.log_request(method, name, rt, length)
        if err is not None:
            stats.log_error("GET" if method == "FAIL" else method, name, err)
    runner.log_exception("local", 'no, "stock"', TRACEBACK)
    runner.log_exception("local", 'no, "stock"', TRACEBACK)
    type(runner).user_count = property(lambda self: USER_COUNT)
    CLOCK[0] = NOW
    return env, runner


def write(name, text):
    with open(os.path.join(OUT, name), "w", newline="") as f:
        f.write(text)


# --- Standalone: web routes through Flask's test client ------------------------------------
env, runner = build(LocalRunner)
runner.state = "running"
web_ui = WebUI(env, "127.0.0.1", 0, delayed_start=True)
client = web_ui.app.test_client()
for route, fixture in [
    ("/stats/requests", "web_stats_requests.json"),
    ("/exceptions", "web_exceptions.json"),
    ("/stats/requests/csv", "csv_requests.csv.txt"),
    ("/stats/failures/csv", "csv_failures.csv.txt"),
    ("/exceptions/csv", "csv_exceptions.csv.txt"),
]:
    write(fixture, client.get(route).get_data(as_text=True))

# Stats history (the charts' points) in Locust's key order.
write("history_points.json", json.dumps(runner.stats.history, indent=1))

# The CSV history rows one tick appends, without and with --csv-full-history.
with tempfile.TemporaryDirectory() as tmp:
    for full, fixture in [(False, "csv_history.csv.txt"), (True, "csv_history_full.csv.txt")]:
        writer = ls.StatsCSVFileWriter(env, ls.PERCENTILES_TO_REPORT, os.path.join(tmp, "x"), full)
        buf = io.StringIO()
        import csv

        w = csv.writer(buf)
        w.writerow(writer.stats_history_csv_columns)
        writer._stats_history_data_rows(w, NOW)
        writer.close_files()
        write(fixture, buf.getvalue())

# The HTML report's window.templateArgs (state stopped: final class counts for the ratios).
runner.state = "stopped"
runner.final_user_classes_count = {"WebUser": 3}
html = get_html_report(env, show_download_link=False)
args = re.search(r"window\.templateArgs = (.*)\n", html).group(1)
write("report_template_args.json", args + "\n")

# --json (serializing resets the entries, so last).
out = io.StringIO()
with contextlib.redirect_stdout(out):
    ls.print_stats_json(runner.stats)
write("stats_json.txt", out.getvalue())

# --- Master: the workers part of /stats/requests -------------------------------------------
env, runner = build(MasterRunner)
runner.state = "running"
for wid, state, classes, cpu, mem in [
    ("host-a_1f2e", "running", {"WebUser": 4}, 12.5, 123456789),
    ("host-b_3c4d", "missing", {"WebUser": 1}, 0.25, 987654),
    ("host-c_5e6f", "ready", {}, 3.0, 1024),
]:
    node = WorkerNode(wid, state=state)
    node.user_classes_count = classes
    node.cpu_usage = cpu
    node.memory_usage = mem
    runner.clients[wid] = node
web_ui = WebUI(env, "127.0.0.1", 0, delayed_start=True)
write("web_stats_requests_master.json", web_ui.app.test_client().get("/stats/requests").get_data(as_text=True))
runner.quit()

# --- --json byte for byte: a run whose buckets first appear in ascending order --------------
CLOCK[0] = 1700000100.0
stats = ls.RequestStats()
for i, (t, name, rt) in enumerate(
    [(1700000100.5, "/a", 1.5), (1700000101.25, "/a", 25.0), (1700000101.75, "/b", 0.123), (1700000103.0, "/a", 1234.5)]
):
    CLOCK[0] = t
    stats.log_request("GET", name, rt, 10 * i)
    if i == 2:
        stats.log_error("GET", name, "boom")
CLOCK[0] = 1700000103.5
stats.log_request("GET", "/none", None, 0)
stats.log_error("DELETE", "/gone", "gone")
out = io.StringIO()
with contextlib.redirect_stdout(out):
    ls.print_stats_json(stats)
write("stats_json_ascending.txt", out.getvalue())
out = io.StringIO()
with contextlib.redirect_stdout(out):
    ls.print_stats_json(ls.RequestStats())
write("stats_json_empty.txt", out.getvalue())


# --- Report helpers: durations and --html file name placeholders ----------------------------
class Opts:
    def __init__(self, html_file, num_users, spawn_rate, run_time):
        self.html_file = html_file
        self.num_users = num_users
        self.spawn_rate = spawn_rate
        self.run_time = run_time


names = []
for args in [
    ("r_{u}_{r}_{t}.html", 10, 2.0, 30),
    ("r_{u}_{r}_{t}.html", 10, 0.5, None),
    ("r_{u}u_{r}r.html", None, None, None),
    ("{t}{t}_{r}.html", 1, 1e-05, 3600),
    ("plain.html", 5, 1.0, 60),
]:
    o = Opts(*args)
    process_html_filename(o)
    names.append([*args, o.html_file])
durations = [[d, format_duration(1000.0, 1000.0 + d)] for d in [0, 0.9, 1, 4, 59.99, 60, 65, 3600, 3723, 86400, 90061, 172800 + 7200 + 120 + 2]]
write("report_misc.json", json.dumps({"filenames": names, "durations": durations}, indent=1) + "\n")
