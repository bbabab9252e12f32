"""Tests of bench/parsers.py (the newer tools: oha, Goose, the simulator, the delay target,
nginx's stub_status) and of the arithmetic the scenarios add (slopes, errors, CPU percent).

    python3 -m unittest discover -s bench -p 'test_*.py'

The fixtures are real outputs captured on the benchmark machine: oha 1.16.0 (its JSON report
trimmed to the keys the parser reads) and the Goose 0.19.0 load test of bench/goose, against
nginx answering 200 and 500.
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import arith  # noqa: E402
import parsers  # noqa: E402
from parsers import ParseError  # noqa: E402
from test_run import HOPPER, LOCUST  # noqa: E402

OHA = """{
  "summary": {
    "successRate": 1.0,
    "total": 2.002226246,
    "slowest": 0.011891149,
    "fastest": 2.7921e-05,
    "average": 0.000183189027124623,
    "requestsPerSec": 54083.79808042931,
    "totalData": 216556,
    "sizePerRequest": 2,
    "sizePerSec": 108157.60727971197
  },
  "latencyPercentiles": {
    "p10": 4.8181e-05,
    "p25": 7.7394e-05,
    "p50": 0.000140758,
    "p75": 0.000178174,
    "p90": 0.000239284,
    "p95": 0.000324551,
    "p99": 0.001622703,
    "p99.9": 0.004774821,
    "p99.99": 0.010150541
  },
  "statusCodeDistribution": {
    "200": 108278
  },
  "errorDistribution": {
    "aborted due to deadline": 10
  }
}
"""

OHA_500 = """{
  "summary": {
    "successRate": 1.0,
    "total": 1.001904973,
    "slowest": 0.005465754,
    "fastest": 2.8302e-05,
    "average": 0.00016694948477924878,
    "requestsPerSec": 59418.80877359414,
    "totalData": 119048,
    "sizePerRequest": 2,
    "sizePerSec": 118821.64796880393
  },
  "latencyPercentiles": {
    "p10": 5.1316e-05,
    "p25": 6.7961e-05,
    "p50": 0.000124985,
    "p75": 0.000171775,
    "p90": 0.000224783,
    "p95": 0.000302468,
    "p99": 0.001491078,
    "p99.9": 0.003621572,
    "p99.99": 0.005448318
  },
  "statusCodeDistribution": {
    "500": 59524
  },
  "errorDistribution": {
    "aborted due to deadline": 8
  }
}
"""

GOOSE = """All 10 users launched.


 === PER SCENARIO METRICS ===
 ------------------------------------------------------------------------------
 Name                     |  # users |  # times run | scenarios/s | iterations
 ------------------------------------------------------------------------------
 1: Throughput            |       10 |       109224 |       36408 |      10922
 ------------------------------------------------------------------------------
 Name                     |    Avg (ms) |        Min |         Max |     Median
 ------------------------------------------------------------------------------
   1: Throughput          |        0.23 |       0.02 |          12 |       0.21

 === PER TRANSACTION METRICS ===
 ------------------------------------------------------------------------------
 Name                     |   # times run |        # fails |  trans/s |  fail/s
 ------------------------------------------------------------------------------
 1: Throughput           
   1:                     |       109,234 |         0 (0%) |    36411 |    0.00
 ------------------------------------------------------------------------------
 Name                     |    Avg (ms) |        Min |         Max |     Median
 ------------------------------------------------------------------------------
 1: Throughput           
   1:                     |        0.23 |       0.02 |          12 |       0.21

 === PER REQUEST METRICS ===
 ------------------------------------------------------------------------------
 Name                     |        # reqs |        # fails |    req/s |  fail/s
 ------------------------------------------------------------------------------
 GET /fast                |       109,234 |         0 (0%) |    36411 |    0.00
 ------------------------------------------------------------------------------
 Name                     |    Avg (ms) |        Min |         Max |     Median
 ------------------------------------------------------------------------------
 GET /fast                |        0.23 |       0.02 |          12 |       0.21
 ------------------------------------------------------------------------------
 Slowest page load within specified percentile of requests (in ms):
 ------------------------------------------------------------------------------
 Name                     |    50% |    75% |    98% |    99% |  99.9% | 99.99%
 ------------------------------------------------------------------------------
 GET /fast                |   0.21 |   0.27 |   0.53 |   1.29 |   3.66 |   9.41
 ------------------------------------------------------------------------------
 Name                     |                                        Status codes 
 ------------------------------------------------------------------------------
 GET /fast                |                                       109,234 [200]
 -------------------------+----------------------------------------------------
 Aggregated               |                                       109,234 [200] 

 === OVERVIEW ===
 ------------------------------------------------------------------------------
 Action       Started               Stopped             Elapsed    Users
 ------------------------------------------------------------------------------
 Increasing:  2026-11-21 11:11:49 - 2026-11-21 11:11:50 (00:00:01, 0 -> 10)
 Maintaining: 2026-11-21 11:11:50 - 2026-11-21 11:11:52 (00:00:02, 10)
 Decreasing:  2026-11-21 11:11:52 - 2026-11-21 11:11:52 (00:00:00, 0 <- 10)

 Target host: http://127.0.0.1:18777/
 goose v0.19.0
 ------------------------------------------------------------------------------
"""

GOOSE_500 = """All 5 users launched.


 === PER SCENARIO METRICS ===
 ------------------------------------------------------------------------------
 Name                     |  # users |  # times run | scenarios/s | iterations
 ------------------------------------------------------------------------------
 1: Throughput            |        5 |        64724 |       32362 |      12945
 ------------------------------------------------------------------------------
 Name                     |    Avg (ms) |        Min |         Max |     Median
 ------------------------------------------------------------------------------
   1: Throughput          |        0.12 |       0.03 |        9.11 |       0.11

 === PER TRANSACTION METRICS ===
 ------------------------------------------------------------------------------
 Name                     |   # times run |        # fails |  trans/s |  fail/s
 ------------------------------------------------------------------------------
 1: Throughput           
   1:                     |        64,729 |         0 (0%) |    32364 |    0.00
 ------------------------------------------------------------------------------
 Name                     |    Avg (ms) |        Min |         Max |     Median
 ------------------------------------------------------------------------------
 1: Throughput           
   1:                     |        0.12 |       0.03 |        9.11 |       0.11

 === PER REQUEST METRICS ===
 ------------------------------------------------------------------------------
 Name                     |        # reqs |        # fails |    req/s |  fail/s
 ------------------------------------------------------------------------------
 GET /missing             |        64,729 |  64,729 (100%) |    32364 |   32364
 ------------------------------------------------------------------------------
 Name                     |    Avg (ms) |        Min |         Max |     Median
 ------------------------------------------------------------------------------
 GET /missing             |        0.12 |       0.03 |         9.1 |       0.11
 ------------------------------------------------------------------------------
 Slowest page load within specified percentile of requests (in ms):
 ------------------------------------------------------------------------------
 Name                     |    50% |    75% |    98% |    99% |  99.9% | 99.99%
 ------------------------------------------------------------------------------
 GET /missing             |   0.11 |   0.15 |   0.28 |   0.44 |    2.1 |   4.45
 ------------------------------------------------------------------------------
 Name                     |                                        Status codes 
 ------------------------------------------------------------------------------
 GET /missing             |                                        64,729 [500]
 -------------------------+----------------------------------------------------
 Aggregated               |                                        64,729 [500] 

 === ERRORS ===
 ------------------------------------------------------------------------------
 Count       | Error
 ------------------------------------------------------------------------------
 64,729        GET /missing: 500 Internal Server Error: /missing
 ------------------------------------------------------------------------------

 === OVERVIEW ===
 ------------------------------------------------------------------------------
 Action       Started               Stopped             Elapsed    Users
 ------------------------------------------------------------------------------
 Increasing:  2026-11-21 11:11:52 - 2026-11-21 11:11:53 (00:00:01, 0 -> 5)
 Maintaining: 2026-11-21 11:11:53 - 2026-11-21 11:11:54 (00:00:01, 5)
 Decreasing:  2026-11-21 11:11:54 - 2026-11-21 11:11:54 (00:00:00, 0 <- 5)

 Target host: http://127.0.0.1:18777/
 goose v0.19.0
 ------------------------------------------------------------------------------
"""

SIMULATOR = """started 3 workers in 0.0 s (0 connected so far)
{"workers":3,"names":20,"requests_per_name":10,"connected":3,"connect_failures":0,"acked":3,"spawned":3,"quit_by_master":3,"lost":0,"heartbeats":21,"reports":12,"full_reports":9,"hdr_reports":12,"requests":1800,"failures":21,"elapsed_s":7.2}
"""

DELAY_STATS = (
    '{"count":5311,"by_delay_ms":{"1":3196,"10":1858,"100":257},"p50_ms":2.446,'
    '"p90_ms":11.979,"p99_ms":101.749,"p999_ms":104.988,"min_ms":1.078,"max_ms":109.565}'
)

STUB_STATUS = """Active connections: 291
server accepts handled requests
 16630948 16630948 31070465
Reading: 6 Writing: 179 Waiting: 106
"""


class ParseOhaTest(unittest.TestCase):
    def test_normal_run(self):
        r = parsers.parse_oha(OHA)
        self.assertEqual(r["requests"], 108278)
        self.assertEqual(r["failures"], 0)
        # Requests cut off by -z are the end of the run, not failures.
        self.assertEqual(r["aborted_at_deadline"], 10)
        self.assertAlmostEqual(r["p50_ms"], 0.140758)
        self.assertAlmostEqual(r["p90_ms"], 0.239284)
        self.assertAlmostEqual(r["p99_ms"], 1.622703)
        self.assertAlmostEqual(r["rps"], 108278 / 2.002226246)

    def test_error_statuses_are_failures(self):
        r = parsers.parse_oha(OHA_500)
        self.assertEqual(r["requests"], 59524)
        self.assertEqual(r["failures"], 59524)

    def test_other_errors_count_as_requests_and_failures(self):
        text = OHA.replace('"aborted due to deadline": 10', '"connection refused": 5')
        r = parsers.parse_oha(text)
        self.assertEqual(r["requests"], 108278 + 5)
        self.assertEqual(r["failures"], 5)

    def test_garbage(self):
        for text in ["", "error: invalid value 'x' for '-c'\n", '{"summary": {}}', "{not json"]:
            with self.assertRaises(ParseError) as cm:
                parsers.parse_oha(text)
            self.assertEqual(cm.exception.tool, "oha")


class ParseGooseTest(unittest.TestCase):
    def test_normal_run(self):
        r = parsers.parse_goose(GOOSE)
        self.assertEqual(r["requests"], 109234)
        self.assertEqual(r["failures"], 0)
        self.assertAlmostEqual(r["rps"], 36411)
        self.assertAlmostEqual(r["p50_ms"], 0.21)
        self.assertAlmostEqual(r["p99_ms"], 1.29)
        self.assertIsNone(r["p90_ms"])  # Goose has no 90 % column

    def test_failures(self):
        r = parsers.parse_goose(GOOSE_500)
        self.assertEqual(r["requests"], 64729)
        self.assertEqual(r["failures"], 64729)
        self.assertAlmostEqual(r["p99_ms"], 0.44)

    def test_aggregated_row_counts_when_there_are_several_names(self):
        sep = " -------------------------+---------------+----------------+----------+--------"
        out = []
        for line in GOOSE.splitlines():
            out.append(line)
            if line.startswith(" GET /fast                |       109,234"):
                out += [" GET /other               |             6 |        1 (16%) |        3 |    0.50",
                        sep,
                        " Aggregated               |       109,240 |         1 (0%) |    36414 |    0.50"]
            if line.startswith(" GET /fast                |   0.21"):
                out += [" GET /other               |      5 |      5 |      5 |      5 |      5 |      5",
                        sep,
                        " Aggregated               |   0.22 |   0.27 |   0.53 |   1.30 |   3.66 |   9.41"]
        r = parsers.parse_goose("\n".join(out))
        self.assertEqual((r["requests"], r["failures"]), (109240, 1))
        self.assertAlmostEqual(r["p99_ms"], 1.30)

    def test_cut_short(self):
        with self.assertRaisesRegex(ParseError, "goose.*PER REQUEST"):
            parsers.parse_goose(GOOSE[: GOOSE.index("=== PER REQUEST")])
        with self.assertRaisesRegex(ParseError, "goose.*percentile"):
            parsers.parse_goose(GOOSE[: GOOSE.index(" Slowest page load")])
        with self.assertRaises(ParseError):
            parsers.parse_goose(LOCUST)


class ParseOthersTest(unittest.TestCase):
    def test_simulator(self):
        r = parsers.parse_simulator(SIMULATOR)
        self.assertEqual((r["requests"], r["failures"], r["acked"]), (1800, 21, 3))
        with self.assertRaisesRegex(ParseError, "simulated_workers"):
            parsers.parse_simulator("error: 20000 workers need 20064 open files\n")
        with self.assertRaisesRegex(ParseError, "not a count"):
            parsers.parse_simulator(SIMULATOR.replace('"requests":1800', '"requests":-1'))

    def test_hyper_baseline(self):
        line = ('{"failures":0,"p50_ms":0.463,"p90_ms":0.7,"p99_ms":1.2,"requests":512345,'
                '"rps":51234.5}')
        r = parsers.parse_hyper_baseline("Finished\n" + line + "\n")
        self.assertEqual((r["requests"], r["failures"], r["p90_ms"]), (512345, 0, 0.7))
        with self.assertRaisesRegex(ParseError, "hyper_baseline"):
            parsers.parse_hyper_baseline("usage: hyper_baseline URL CONNECTIONS SECONDS\n")
        with self.assertRaisesRegex(ParseError, "not a count"):
            parsers.parse_hyper_baseline(line.replace('"failures":0', '"failures":"x"'))
        with self.assertRaisesRegex(ParseError, "not a number"):
            parsers.parse_hyper_baseline(line.replace('"rps":51234.5', '"rps":null'))

    def test_delay_stats(self):
        r = parsers.parse_delay_stats(DELAY_STATS)
        self.assertEqual(r["count"], 5311)
        self.assertEqual(r["by_delay_ms"]["100"], 257)
        self.assertAlmostEqual(r["p99_ms"], 101.749)
        with self.assertRaisesRegex(ParseError, "no delayed request"):
            parsers.parse_delay_stats('{"count":0,"p50_ms":null}')
        with self.assertRaisesRegex(ParseError, "not JSON"):
            parsers.parse_delay_stats("<html>")

    def test_stub_status(self):
        r = parsers.parse_stub_status(STUB_STATUS)
        self.assertEqual(r, {"active": 291, "accepts": 16630948, "handled": 16630948,
                             "requests": 31070465})
        with self.assertRaises(ParseError):
            parsers.parse_stub_status("<html>404</html>")

    def test_all_users_spawned(self):
        self.assertEqual(parsers.all_users_spawned(HOPPER), 50)
        self.assertIsNone(parsers.all_users_spawned("Starting Locust 2.47.0\n"))

    def test_hopper_p90_precise_and_approximated(self):
        r = parsers.parse_hopper(HOPPER)
        self.assertAlmostEqual(r["p90_ms"], 0.872)
        self.assertEqual(r["p90_approx_ms"], 1.0)
        self.assertEqual(parsers.parse_locust(LOCUST)["p90_ms"], 3.0)


class ArithmeticTest(unittest.TestCase):
    def test_slope(self):
        self.assertAlmostEqual(arith.slope([(1000, 13000), (5000, 25000), (15000, 55000)]), 3.0)
        self.assertIsNone(arith.slope([(1000, 1)]))
        self.assertIsNone(arith.slope([(1000, 1), (1000, 2)]))

    def test_rel_error(self):
        self.assertAlmostEqual(arith.rel_error(101.0, 100.0), 0.01)
        self.assertAlmostEqual(arith.rel_error(99.0, 100.0), -0.01)
        self.assertIsNone(arith.rel_error(None, 100.0))
        self.assertIsNone(arith.rel_error(1.0, 0.0))

    def test_cpu_percent(self):
        self.assertAlmostEqual(arith.cpu_percent(100, 150, 100, 2.0), 25.0)
        with self.assertRaises(ValueError):
            arith.cpu_percent(0, 1, 100, 0.0)


if __name__ == "__main__":
    unittest.main()
