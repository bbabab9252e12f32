#!/usr/bin/env python3
"""Builds the wire fixtures of hopper-cluster's tests with real Locust 2.47.0.

Every `.msgpack` file here is one ZeroMQ payload exactly as Locust's own code produces it
(`locust.rpc.protocol.Message(...).serialize()`), with data built by Locust's own classes where
Locust builds it (`RequestStats`, `StatsEntry`, `StatsError` and the `report_to_master` listeners
for the stats report; `vars(parsed_options)` for a spawn). Wall time is pinned so the output is
reproducible.

Run from anywhere (not from inside the locust package directory):

    /tmp/locustvenv/bin/python crates/hopper-cluster/testdata/gen_fixtures.py

The script rewrites the files next to it; `git diff` should then show nothing.
"""

import datetime
import json
import os

import msgpack

import locust
import locust.stats as stats_mod
from locust import argument_parser
from locust.event import Events
from locust.rpc.protocol import Message
from locust.stats import RequestStats, StatsError, setup_distributed_stats_event_listeners

assert locust.__version__ == "2.47.0", locust.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_ID = "vm_dca15e4818dd491385edaa317193beae"  # 35 bytes: hostname "_" uuid4().hex


class Clock:
    """Replaces `time.time` inside locust.stats."""

    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now


def write(name, payload):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(payload)


def msg(name, kind, data, node_id=NODE_ID):
    payload = Message(kind, data, node_id).serialize()
    # Locust must read back what it wrote.
    back = Message.unserialize(payload)
    assert (back.type, back.node_id) == (kind, node_id)
    write(name, payload)
    return payload


def simple_messages():
    msg("ack.msgpack", "ack", {"index": 0})
    msg("ack_index_300.msgpack", "ack", {"index": 300})
    msg("heartbeat_master.msgpack", "heartbeat", None)
    msg(
        "heartbeat_worker.msgpack",
        "heartbeat",
        {"state": "running", "current_cpu_usage": 12.5, "current_memory_usage": 123456789},
    )
    msg("client_ready.msgpack", "client_ready", locust.__version__)
    msg("client_ready_skip.msgpack", "client_ready", -1)
    msg(
        "spawning_complete_worker.msgpack",
        "spawning_complete",
        {"user_classes_count": {"OtherUser": 5, "WebUser": 2}, "user_count": 7},
    )
    msg("spawning_complete_master.msgpack", "spawning_complete", {"user_count": 7})
    msg("spawning.msgpack", "spawning", None)
    msg("stop.msgpack", "stop", None)
    msg("quit.msgpack", "quit", None)
    msg(
        "exception.msgpack",
        "exception",
        {
            "msg": "division by zero",
            "traceback": '  File "/app/locustfile.py", line 12, in index\n    1 / 0\n',
        },
    )
    msg(
        "logs.msgpack",
        "logs",
        {"worker_id": NODE_ID, "logs": ["[2025-01-02 03:04:05,678] vm/INFO/locust.main: Starting Locust 2.47.0"]},
    )
    # Any map holding "__datetime__" travels like this (Locust's msgpack `default` hook).
    msg(
        "custom_datetime.msgpack",
        "my_custom",
        {"when": datetime.datetime(2025, 1, 2, 3, 4, 5, 678901), "n": [1, 2.5, None, True, b"\x00\xff"]},
    )


def spawn_message():
    parser = argument_parser.get_empty_argument_parser()
    argument_parser.setup_parser_arguments(parser)
    options = parser.parse(args=["--host", "http://127.0.0.1:8080", "--tags", "a", "b"])
    # What MasterRunner.start puts in a spawn message (environment.stop_timeout is a float).
    data = {
        "timestamp": 1795238526.123456,
        "user_classes_count": {"OtherUser": 3, "WebUser": 1},
        "host": "http://127.0.0.1:8080",
        "stop_timeout": 0.0,
        "parsed_options": vars(options),
    }
    msg("spawn.msgpack", "spawn", data)
    data = dict(data, host=None, stop_timeout=None, user_classes_count={})
    msg("spawn_nil_host.msgpack", "spawn", data)


def stats_report():
    """A worker's report, built by Locust's own listeners from requests logged at fixed times.

    Locust writes dict keys in insertion order and Hopper writes them sorted; to compare bytes,
    the entries are created in sorted (name, method) order, the requests are logged in rising
    response-time order (so every histogram's buckets are first hit in rising order) at rising
    times, and the failures are logged in the order of their sorted keys.
    """
    clock = Clock(1795238526.0)
    stats_mod.time = clock  # `import time` in locust.stats: replace the module reference
    stats = RequestStats()
    events = Events()
    setup_distributed_stats_event_listeners(events, stats)

    def worker_listener(client_id, data):  # WorkerRunner's own listener
        data["user_classes_count"] = {"OtherUser": 5, "WebUser": 2}
        data["user_count"] = 7

    def custom_listener(client_id, data):  # a user's report_to_master listener
        data["custom"] = {"a": [1, 2.5, None], "b": "text"}

    events.report_to_master.add_listener(worker_listener)
    events.report_to_master.add_listener(custom_listener)

    clock.now = 1795238526.25
    stats.reset_all()
    names = [("/", "GET"), ("/api", "POST"), ("/fail-only", "GET"), ("/missing", "GET")]
    for name, method in sorted(names):
        stats.get(name, method)

    # (response time ms, name, method, content length); logged sorted by response time.
    requests = [
        (0.4, "/", "GET", 10),
        (1.86, "/api", "POST", 0),
        (2.5, "/", "GET", 10),
        (3.5, "/", "GET", 12),
        (15.3, "/missing", "GET", 0),
        (99.5, "/api", "POST", 4),
        (147.0, "/", "GET", 10),
        (145.0, "/api", "POST", 4),
        (1250.0, "/", "GET", 10),
        (3432.0, "/api", "POST", 6),
        (58760.0, "/", "GET", 0),
    ]
    t = 1795238526.5
    for rt, name, method, length in sorted(requests, key=lambda r: stats_mod.bucket_response_time(r[0])):
        clock.now = t
        stats.log_request(method, name, rt, length)
        t += 0.37
    clock.now = t
    stats.log_request("GET", "/missing", None, 0)  # a request without a response time

    failures = [
        ("GET", "/missing", "HTTPError('404 Client Error: Not Found for url: /missing')"),
        ("GET", "/fail-only", "ConnectionRefusedError(111, 'Connection refused')"),
        ("POST", "/api", "CatchResponseError('bad body')"),
    ]
    failures.sort(key=lambda f: StatsError.create_key(*f))
    for method, name, error in failures:
        for _ in range(2):
            t += 0.41
            clock.now = t
            stats.log_error(method, name, error)

    clock.now = 1795238530.0
    data = {}
    events.report_to_master.fire(client_id=NODE_ID, data=data)
    payload = msg("stats.msgpack", "stats", data)
    with open(os.path.join(HERE, "stats.json"), "w") as f:
        # Python's view of the same data (JSON turns the integer keys into strings).
        json.dump(Message.unserialize(payload).data, f, indent=1)
        f.write("\n")

    # An empty report: nothing happened since the previous one.
    data = {}
    events.report_to_master.fire(client_id=NODE_ID, data=data)
    msg("stats_empty.msgpack", "stats", data)

    # Integer response times (what a user firing `request` events with ints gets, and what
    # third-party workers send): max/min/total travel as msgpack ints.
    stats = RequestStats()
    events = Events()
    setup_distributed_stats_event_listeners(events, stats)
    events.report_to_master.add_listener(worker_listener)
    clock.now = 1795238600.0
    stats.reset_all()
    clock.now = 1795238600.5
    stats.log_request("GET", "/int", 3, 100)
    stats.log_request("GET", "/int", 250, 100)
    data = {}
    events.report_to_master.fire(client_id=NODE_ID, data=data)
    payload = msg("stats_int_times.msgpack", "stats", data)
    with open(os.path.join(HERE, "stats_int_times.json"), "w") as f:
        json.dump(Message.unserialize(payload).data, f, indent=1)
        f.write("\n")


def main():
    simple_messages()
    spawn_message()
    stats_report()
    # One byte-exact reference for the encoder's integer and float widths.
    write(
        "scalars.msgpack",
        msgpack.dumps(
            [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
             -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63),
             0.0, -1.5, 1e300, "", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 65536,
             b"", b"\x01" * 256, [None] * 16, {i: i for i in range(16)}, True, False]
        ),
    )


if __name__ == "__main__":
    main()
