"""Locust's side of the interop tests: the same three user classes as Hopper's
examples/distributed.rs (same names, weights, requests), so Python and Hopper workers can
share one test and one master."""

import logging

from locust import FastHttpUser, constant, events, task

# Custom data from workers to the master, the same as examples/distributed.rs sends: each
# worker reports the requests it made since its last report, and the master logs the sum.
_counts = {"since_report": 0, "reported": 0}


@events.request.add_listener
def _count_request(**kw):
    _counts["since_report"] += 1


@events.report_to_master.add_listener
def _send_count(client_id, data, **kw):
    data["requests_seen"] = _counts["since_report"]
    _counts["since_report"] = 0


@events.worker_report.add_listener
def _add_count(client_id, data, **kw):
    seen = data.get("requests_seen", 0)
    if seen:
        _counts["reported"] += seen
        logging.info("workers reported %d requests", _counts["reported"])


class Api(FastHttpUser):
    weight = 3
    wait_time = constant(0.2)

    @task
    def index(self):
        self.client.get("/")


class Browser(FastHttpUser):
    weight = 1
    wait_time = constant(0.2)

    @task
    def fast(self):
        self.client.get("/fast")


class Feed(FastHttpUser):
    fixed_count = 2
    wait_time = constant(0.2)

    @task
    def products(self):
        self.client.get("/products")
