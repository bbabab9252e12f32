"""Locust's side of the interop tests: the same three user classes as Hopper's
examples/distributed.rs (same names, weights, requests), so Python and Hopper workers can
share one test and one master."""

from locust import FastHttpUser, constant, task


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
