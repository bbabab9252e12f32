"""The load generators and the benchmark's own programs: how each is installed or built, the
command that runs it, and the parser of its output.

Installed when missing (Python standard library only, the ordinary package clients):

* nginx (nginx-light) and wrk from Debian with apt-get (after one apt-get update);
* Locust 2.47.0, and matplotlib for the plots, from PyPI in a virtualenv at bench/.venv;
* oha from crates.io with `cargo install` into bench/.cache/oha;
* the Goose load test in bench/goose (its own Cargo.toml and lock), built in release into
  bench/.cache/build;
* Hopper's programs (the hopper binary, the throughput and idle_users examples, and
  hopper-cluster's simulated_workers and delay_target examples) built in release into
  $CARGO_TARGET_DIR (default target/).

bench/.cache and bench/.venv are gitignored and reused: a second run builds nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import parsers
from procs import ROOT, log

BENCH = ROOT / "bench"
VENV = BENCH / ".venv"
CACHE = BENCH / ".cache"
LOCUST_VERSION = "2.47.0"
MATPLOTLIB_VERSION = "3.11.2"
OHA_VERSION = "1.16.0"
GOOSE_DIR = BENCH / "goose"
GOOSE_BIN = CACHE / "build" / "release" / "hopper-bench-goose"
OHA_BIN = CACHE / "oha" / "bin" / "oha"


# ---------------------------------------------------------------------------------------------
# Installing
# ---------------------------------------------------------------------------------------------


def find_bin(name: str) -> Optional[str]:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin:/sbin"
    return shutil.which(name, path=path)


_apt_updated = False


def apt_install(binary: str, package: str) -> str:
    """The path of binary, installing its Debian package first when it is missing."""
    global _apt_updated
    found = find_bin(binary)
    if found:
        return found
    log(f"{binary} is missing: installing {package} from Debian")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        subprocess.run(sudo + ["apt-get", "update"], check=True, env=env)
        _apt_updated = True
    subprocess.run(sudo + ["apt-get", "install", "-y", package], check=True, env=env)
    found = find_bin(binary)
    if not found:
        sys.exit(f"error: {package} was installed but {binary} is still not found")
    return found


def _venv_has(module: str, version: str) -> bool:
    py = VENV / "bin" / "python"
    if not py.exists():
        return False
    r = subprocess.run([str(py), "-c", f"import {module}; print({module}.__version__)"],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == version


def ensure_venv() -> None:
    """bench/.venv with Locust 2.47.0 and matplotlib."""
    if _venv_has("locust", LOCUST_VERSION) and _venv_has("matplotlib", MATPLOTLIB_VERSION):
        return
    log(f"installing Locust {LOCUST_VERSION} and matplotlib {MATPLOTLIB_VERSION} in bench/.venv")
    if not (VENV / "bin" / "python").exists():
        if subprocess.run([sys.executable, "-m", "venv", str(VENV)]).returncode != 0:
            # Debian splits venv support into its own package.
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            subprocess.run(sudo + ["apt-get", "install", "-y", "python3-venv"], check=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         f"locust=={LOCUST_VERSION}", f"matplotlib=={MATPLOTLIB_VERSION}"],
        check=True,
    )


def _cargo_env() -> dict:
    # The cache's own target directory: the benchmark's third-party builds never share
    # (or lock) Hopper's.
    return dict(os.environ, CARGO_TARGET_DIR=str(CACHE / "build"))


def ensure_oha() -> None:
    if OHA_BIN.exists():
        return
    # A TLS library is always built: oha does not compile without one.
    cmd = ["cargo", "install", "oha", "--version", OHA_VERSION, "--locked",
           "--root", str(CACHE / "oha")]
    log("building oha (minutes, once): " + " ".join(cmd))
    subprocess.run(cmd, check=True, env=_cargo_env())


def ensure_goose() -> None:
    if GOOSE_BIN.exists():
        return
    cmd = ["cargo", "build", "--release", "--locked"]
    log("building the Goose load test (minutes, once): " + " ".join(cmd) + " in bench/goose")
    subprocess.run(cmd, check=True, cwd=GOOSE_DIR, env=_cargo_env())


def target_dir() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target if target.is_absolute() else ROOT / target


def hopper_program(name: str) -> Path:
    """A Hopper release program: the hopper binary, or an example by name."""
    release = target_dir() / "release"
    return release / name if name == "hopper" else release / "examples" / name


HOPPER_BUILDS = [
    ["cargo", "build", "--release", "-p", "hopper", "--bin", "hopper",
     "--example", "throughput", "--example", "idle_users"],
    ["cargo", "build", "--release", "-p", "hopper-cluster",
     "--example", "simulated_workers", "--example", "delay_target"],
    ["cargo", "build", "--release", "-p", "hopper-http", "--example", "hyper_baseline"],
]


def build_hopper(skip_build: bool) -> None:
    """Builds Hopper's programs (cargo decides what is stale); --skip-build uses them as they
    are when they exist."""
    names = ["hopper", "throughput", "idle_users", "simulated_workers", "delay_target",
             "hyper_baseline"]
    if skip_build and all(hopper_program(n).exists() for n in names):
        return
    for cmd in HOPPER_BUILDS:
        log("building Hopper: " + " ".join(cmd))
        subprocess.run(cmd, cwd=ROOT, check=True)


def install_all(skip_build: bool, need_oha: bool = True, need_goose: bool = True) -> dict:
    """Everything the scenarios need; returns the paths of the Debian binaries."""
    paths = {
        "nginx": apt_install("nginx", "nginx-light"),
        "wrk": apt_install("wrk", "wrk"),
    }
    ensure_venv()
    if need_oha or need_goose:
        apt_install("cc", "build-essential")
    if need_oha:
        ensure_oha()
    if need_goose:
        ensure_goose()
    build_hopper(skip_build)
    return paths


# ---------------------------------------------------------------------------------------------
# The generators of the single-process scenarios (throughput, accuracy)
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a tool's command needs to know about one run."""

    url: str  # the target's base URL, no trailing slash
    path: str  # the request path
    users: int
    duration: int  # seconds
    workdir: Path  # a private temporary directory
    spawn_rate: Optional[float] = None  # users per second; None: all in one second
    run_time: Optional[int] = None  # seconds the process may run (idle runs: longer than used)
    wrk_path: str = "wrk"

    @property
    def rate(self) -> str:
        r = self.spawn_rate if self.spawn_rate is not None else self.users
        return f"{r:g}"


@dataclass
class Tool:
    name: str
    label: str  # for the report
    command: Callable[[Context], list[str]]
    parse: Callable[[str], dict]
    ok_returncodes: tuple = (0,)  # exit codes of a run whose output counts
    env: Callable[[Context], Optional[dict]] = field(default=lambda ctx: None)


def wrk_command(ctx: Context) -> list[str]:
    return [ctx.wrk_path, "-t2", f"-c{ctx.users}", f"-d{ctx.duration}s", "--latency",
            ctx.url + ctx.path]


def oha_command(ctx: Context) -> list[str]:
    # --no-tui: no terminal UI; the JSON report is what is parsed.
    return [str(OHA_BIN), "--no-tui", "--output-format", "json", "-c", str(ctx.users),
            "-z", f"{ctx.duration}s", ctx.url + ctx.path]


def goose_command(ctx: Context) -> list[str]:
    # -t counts from when all users run; --no-reset-metrics keeps the ramp's requests, as
    # the CPU time includes it.
    return [str(GOOSE_BIN), "-H", ctx.url, "-u", str(ctx.users), "-r", ctx.rate,
            "-t", f"{ctx.duration}s", "--no-reset-metrics", "--quiet"]


def goose_env(ctx: Context) -> dict:
    return dict(os.environ, BENCH_PATH=ctx.path)


def hyper_baseline_command(ctx: Context) -> list[str]:
    return [str(hopper_program("hyper_baseline")), ctx.url + ctx.path, str(ctx.users),
            str(ctx.duration)]


def hopper_command(ctx: Context) -> list[str]:
    return [str(hopper_program("throughput")), "-H", ctx.url, "--headless", "-u",
            str(ctx.users), "-r", ctx.rate, "-t", f"{ctx.duration}s", "--only-summary"]


LOCUSTFILE = '''\
"""Generated by bench/run.py: one {cls}, {wait}, GET {path}."""
from locust import {cls}, task, constant


class Bench({cls}):
    wait_time = constant({wait_s})

    @task
    def fast(self):
        self.client.get("{path}")
'''


def locustfile(ctx: Context, cls: str, wait_s: float = 0) -> Path:
    """Writes the scenario's locustfile for a user class (FastHttpUser or HttpUser)."""
    wait = "no wait" if wait_s == 0 else f"a wait of {wait_s:g} s"
    path = ctx.workdir / f"locustfile_{cls}_{wait_s:g}.py"
    path.write_text(LOCUSTFILE.format(cls=cls, wait=wait, wait_s=wait_s, path=ctx.path))
    return path


def locust_command(cls: str, wait_s: float = 0) -> Callable[[Context], list[str]]:
    def command(ctx: Context) -> list[str]:
        run_time = ctx.run_time or ctx.duration
        return [str(VENV / "bin" / "locust"), "-f", str(locustfile(ctx, cls, wait_s)),
                "--headless", "-u", str(ctx.users), "-r", ctx.rate, "-t", f"{run_time}s",
                "--only-summary", "-H", ctx.url]
    return command


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool("wrk", "wrk 4.1", wrk_command, parsers.parse_wrk),
        Tool("oha", f"oha {OHA_VERSION}", oha_command, parsers.parse_oha),
        Tool("goose", "Goose 0.19.0", goose_command, parsers.parse_goose, env=goose_env),
        # Not a load tester: hyper's plainest loop, the floor under Hopper's HTTP client.
        Tool("hyper", "hyper 1 loop (baseline)", hyper_baseline_command,
             parsers.parse_hyper_baseline),
        # Hopper and Locust exit with 1 when a request failed; their summary still counts.
        Tool("hopper", "Hopper", hopper_command, parsers.parse_hopper, ok_returncodes=(0, 1)),
        Tool("locust-fast", f"Locust {LOCUST_VERSION} FastHttpUser",
             locust_command("FastHttpUser"), parsers.parse_locust, ok_returncodes=(0, 1)),
        Tool("locust-http", f"Locust {LOCUST_VERSION} HttpUser", locust_command("HttpUser"),
             parsers.parse_locust, ok_returncodes=(0, 1)),
    ]
}


# ---------------------------------------------------------------------------------------------
# Idle users: the generator runs until the benchmark has measured it, then gets SIGTERM
# ---------------------------------------------------------------------------------------------


IDLE_WAIT_S = 10


def hopper_idle_command(ctx: Context) -> list[str]:
    return [str(hopper_program("idle_users")), "-H", ctx.url, "--headless", "-u",
            str(ctx.users), "-r", ctx.rate, "-t", f"{ctx.run_time}s", "--only-summary"]


IDLE_TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool("hopper", "Hopper", hopper_idle_command, parsers.parse_hopper,
             ok_returncodes=(0, 1)),
        Tool("locust-fast", f"Locust {LOCUST_VERSION} FastHttpUser",
             locust_command("FastHttpUser", IDLE_WAIT_S), parsers.parse_locust,
             ok_returncodes=(0, 1)),
        Tool("locust-http", f"Locust {LOCUST_VERSION} HttpUser",
             locust_command("HttpUser", IDLE_WAIT_S), parsers.parse_locust,
             ok_returncodes=(0, 1)),
    ]
}


# ---------------------------------------------------------------------------------------------
# Master and workers
# ---------------------------------------------------------------------------------------------


def cluster_commands(kind: str, ctx: Context, port: int) -> tuple[list[str], list[str]]:
    """(master, worker) commands of the cluster throughput run: the master waits for 2
    workers, then runs ctx.users users with no wait for ctx.duration seconds."""
    common = ["--headless", "-u", str(ctx.users), "-r", ctx.rate, "-t", f"{ctx.duration}s",
              "--only-summary", "-H", ctx.url]
    master_opts = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                   str(port), "--expect-workers", "2"]
    worker_opts = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    if kind == "hopper":
        prog = [str(hopper_program("throughput"))]
        return prog + master_opts + common, prog + worker_opts
    lf = str(locustfile(ctx, "FastHttpUser"))
    prog = [str(VENV / "bin" / "locust"), "-f", lf]
    return prog + master_opts + common, prog + worker_opts


CLUSTER_TOOLS = {"hopper": "Hopper (throughput example)",
                 "locust-fast": f"Locust {LOCUST_VERSION} FastHttpUser"}

SIM_LOCUSTFILE = '''\
"""Generated by bench/run.py: the user class a Locust master hands to simulated workers."""
from locust import User, task


class Sim(User):
    @task
    def nothing(self):
        pass
'''


def master_command(kind: str, workdir: Path, port: int, workers: int, max_s: int) -> list[str]:
    """A headless master that waits for `workers` workers, gives each one user and runs until
    the benchmark stops it (-t only bounds it)."""
    opts = ["--master", "--headless", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(port), "--expect-workers", str(workers),
            "--expect-workers-max-wait", str(max_s), "-u", str(workers), "-r", str(workers),
            "-t", f"{max_s}s", "--only-summary", "-H", "http://127.0.0.1:9"]
    if kind == "hopper":
        return [str(hopper_program("hopper"))] + opts
    lf = workdir / "locustfile_sim.py"
    lf.write_text(SIM_LOCUSTFILE)
    return [str(VENV / "bin" / "locust"), "-f", str(lf)] + opts


MASTER_TOOLS = {"hopper": "Hopper master (`hopper --master --headless`)",
                "locust": f"Locust {LOCUST_VERSION} master"}


def simulator_command(port: int, workers: int, names: int, run_time: int) -> list[str]:
    return [str(hopper_program("simulated_workers")), "--master-port", str(port),
            "--workers", str(workers), "--names", str(names), "--run-time", str(run_time)]
