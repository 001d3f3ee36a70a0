"""Single-user image: size, server start with its phases, idle memory, kernel start.

    .venv/bin/python -m benchmarks.singleuser [--image IMAGE] [--baseline-image IMAGE] [--runs 5]

Prints medians; asserts nothing. Builds nothing: build the image(s) first (`make build`).

- Server start (issue 14, goal <= 1.5 s): a new user's container as the hub's spawner makes it
  (its hardening from hub/docker.py, a new home volume, the image's own start script) until
  ``/api/status`` answers a request that the server checks with its hub. The hub is a stand-in
  in a container of its own (it answers the server's start-up calls and token checks). Runs
  alternate between the images, so that other load on the machine hits both alike; the floor
  is a container of IMAGE that runs ``python -m http.server`` (container plus Python start).
  Phases of each start: ``container`` (docker run until the container's process runs),
  ``imports`` (until the server's first log line: Python imports and configuration),
  ``init`` (until it listens: extensions loaded) and ``first answer`` (the first request,
  checked with the hub); ``cpu`` is the CPU time the container used until then. Then the
  first requests of a JupyterLab page load, each timed once per start.
- Idle memory (issue 14, goal <= 80 MB without a kernel): the container's memory as
  ``docker stats`` shows it, a few seconds after the start and again with one idle Python
  kernel (one cell run), and how many such users the memory of a 24 GiB host holds.
- Image size (issue 14, goal <= 1.2 GB) and kernel start to first result (issue 14, goals
  <= 1.0 s for Python and Bash, <= 1.5 s for R, Octave and SoS): each kernel started and one
  cell run inside a container of each image, --runs times, the images alternating.
"""

import argparse
import json
import re
import statistics
import subprocess
import textwrap
import time
import uuid
from datetime import datetime
from pathlib import Path

import requests
from openbis_jupyterhub.hub import docker as hub_docker
from openbis_jupyterhub.hub import settings

from tests.support.images import IMAGE_TAG, docker
from tests.support.jupyter_api import KernelSession
from tests.support.singleuser import HUB_STAND_IN, hub_environment

HOST_MEMORY = 24 * 2**30
USER = "bench"
SETTLE = 3  # seconds a server (or kernel) is left idle before its memory is read
KERNEL_GOAL_SECONDS = {"python3": 1.0, "bash": 1.0, "ir": 1.5, "octave": 1.5, "sos": 1.5}
KERNEL_CODE = {
    "python3": "print(42)",
    "ir": "cat(42)",
    "octave": "disp(42)",
    "bash": "echo 42",
    "sos": "print(42)",
}
# Runs in the container: start each kernel, run one cell, wait for its result, shut down.
KERNEL_TIMER = textwrap.dedent(
    """
    import json, sys, time
    from jupyter_client.manager import start_new_kernel

    code, runs = json.loads(sys.argv[1]), int(sys.argv[2])
    times = {}
    for name, source in code.items():
        times[name] = []
        for _ in range(runs):
            start = time.perf_counter()
            km, kc = start_new_kernel(kernel_name=name, startup_timeout=60)
            outputs = []
            kc.execute_interactive(source, timeout=60, output_hook=outputs.append)
            times[name].append(time.perf_counter() - start)
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            assert any("42" in json.dumps(m["content"]) for m in outputs), (name, outputs)
    print(json.dumps(times))
    """
)
# What a JupyterLab page load asks the server first (the page, then its settings, kernel specs
# and workspace); the build check only where the image's page config still asks for it.
LAB_REQUESTS = {
    "lab page": "lab",
    "lab settings": "lab/api/settings",
    "kernel specs": "api/kernelspecs",
    "workspace": "lab/api/workspaces/default",
    "build check": "lab/api/build",
}
PHASES = ("container", "imports", "init", "first answer")


def docker_time(stamp: str) -> float:
    """Docker's RFC 3339 time with nanoseconds -> seconds since the epoch."""
    whole, _, fraction = stamp.strip().rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{fraction[:6].ljust(6, '0')}+00:00").timestamp()


def hardening_args() -> list[str]:
    """The spawner's HostConfig additions (hub/docker.py, default settings) as CLI flags."""
    config = hub_docker.host_config(settings.read({}, complete=False))
    args = [f"--cap-drop={cap}" for cap in config["cap_drop"]]
    args += [f"--cap-add={cap}" for cap in config["cap_add"]]
    args += [f"--pids-limit={config['pids_limit']}"]
    args += ["--read-only"] if config["read_only"] else []
    args += [f"--tmpfs={path}:{options}" for path, options in config["tmpfs"].items()]
    args += [f"--security-opt={option}" for option in config.get("security_opt", [])]
    return args


def mem_bytes(text: str) -> float:
    """``96.74MiB`` (docker stats) -> bytes."""
    number, unit = re.fullmatch(r"([\d.]+)([KMGT]?)i?B", text.strip()).groups()
    return float(number) * 2 ** (10 * " KMGT".index(unit or " "))


class Bench:
    """The containers, volumes and network of one benchmark run, and the hub stand-in."""

    def __init__(self, hub_image: str):
        self.prefix = f"bench-singleuser-{uuid.uuid4().hex[:8]}"
        self.network = self.prefix
        self.hub = f"{self.prefix}-hub"
        self.containers, self.volumes = [self.hub], []
        self.count = 0
        docker("network", "create", self.network)
        docker("run", "-d", "--name", self.hub, "--network", self.network, "-e",
               f"JUPYTERHUB_USER={USER}", "--entrypoint", "python", hub_image, "-c",
               HUB_STAND_IN)  # fmt: skip

    def close(self):
        for name in self.containers:
            docker("rm", "-f", name, check=False)
        for name in self.volumes:
            docker("volume", "rm", "-f", name, check=False)
        docker("network", "rm", self.network, check=False)

    def run(self, image: str, command: tuple[str, ...] = ()) -> tuple[str, str, float]:
        """A new user's container of ``image`` (its CMD unless ``command``); returns its name,
        its published port and the time.time() just before ``docker run``."""
        self.count += 1
        name = volume = f"{self.prefix}-{self.count}"
        self.containers.append(name)
        self.volumes.append(volume)
        env = {
            **hub_environment(USER),
            "JUPYTERHUB_API_URL": f"http://{self.hub}:8081/hub/api",
            "JUPYTERHUB_ACTIVITY_URL": f"http://{self.hub}:8081/hub/api/users/{USER}/activity",
            "OPENBIS_URL": "https://openbis.invalid",
        }
        args = ["run", "-d", "--name", name, "--network", self.network, "-p", "127.0.0.1::8888"]
        args += ["-v", f"{volume}:{hub_docker.HOME}", *hardening_args()]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        started = time.time()
        docker(*args, image, *command)
        port = docker("port", name, "8888/tcp").split()[0].rsplit(":", 1)[1]
        return name, port, started

    def floor(self, image: str) -> float:
        """Seconds until a plain Python HTTP server in a container of ``image`` answers."""
        name, port, started = self.run(image, ("python", "-m", "http.server", "8888"))
        wait_for(f"http://127.0.0.1:{port}/", {})
        ready = time.time() - started
        docker("rm", "-f", name)
        return ready

    def start(self, image: str) -> dict:
        """One server start: phases, CPU, the first lab requests, idle memory (without and
        with a kernel)."""
        name, port, started = self.run(image)
        url = f"http://127.0.0.1:{port}/user/{USER}/"
        headers = {"Authorization": f"token {uuid.uuid4().hex}"}
        wait_for(url + "api/status", headers)
        ready = time.time()
        result = {"ready": ready - started, "cpu": cpu_seconds(name)}
        running = docker_time(docker("inspect", "-f", "{{.State.StartedAt}}", name))
        logs = server_log(name)
        first_line = docker_time(logs[0].split()[0])
        listening = next(docker_time(line.split()[0]) for line in logs if " is running at" in line)
        result["phases"] = {
            "container": running - started,
            "imports": first_line - running,
            "init": listening - first_line,
            "first answer": ready - listening,
        }
        page_config = lab_page_config(url, headers)
        result["lab"] = {}
        for label, path in LAB_REQUESTS.items():
            if label == "build check" and not page_config.get("buildCheck", True):
                continue
            began = time.perf_counter()
            request(url + path, headers)
            result["lab"][label] = time.perf_counter() - began
        time.sleep(SETTLE)
        result["memory"] = memory(name)
        kernel = KernelSession(url, headers["Authorization"].split()[1])
        kernel.execute("1")
        time.sleep(SETTLE)
        result["memory with kernel"] = memory(name)
        result["processes"] = processes(name)
        docker("rm", "-f", name)
        return result


def request(url: str, headers: dict, timeout: float = 10) -> bytes:
    answer = requests.get(url, headers=headers, timeout=timeout)
    answer.raise_for_status()
    return answer.content


def wait_for(url: str, headers: dict, limit: float = 180):
    deadline = time.perf_counter() + limit
    while True:
        try:
            request(url, headers, timeout=2)
            return
        except requests.RequestException:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{url} did not answer within {limit} s") from None
            time.sleep(0.02)


def server_log(name: str) -> list[str]:
    """The server's log lines (it logs to stderr), each with Docker's time stamp first."""
    out = subprocess.run(
        ["docker", "logs", "-t", name], capture_output=True, text=True, timeout=30, check=True
    )
    lines = [line for line in (out.stdout + out.stderr).splitlines() if " [" in line]
    return sorted(lines, key=lambda line: docker_time(line.split()[0]))


def lab_page_config(url: str, headers: dict) -> dict:
    html = request(url + "lab", headers).decode()
    found = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', html, re.S)
    return json.loads(found.group(1)) if found else {}


def cpu_seconds(name: str) -> float:
    """CPU time the container has used (its cgroup, v1 or v2)."""
    out = docker("exec", name, "sh", "-c",
                 "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null"
                 " || grep usage_usec /sys/fs/cgroup/cpu.stat")  # fmt: skip
    words = out.split()
    return int(words[0]) / 1e9 if len(words) == 1 else int(words[1]) / 1e6


def memory(name: str) -> float:
    """The container's memory as ``docker stats`` shows it (page cache not counted), bytes."""
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name)
    return mem_bytes(usage.split("/")[0])


PROCESS_LISTING = textwrap.dedent(
    """
    import os, pathlib
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            pss = next(l for l in (proc / "smaps_rollup").read_text().splitlines()
                       if l.startswith("Pss:"))
            cmd = (proc / "cmdline").read_bytes().replace(b"\\0", b" ").decode()[:70]
        except (OSError, StopIteration):
            continue
        print(int(pss.split()[1]) * 1024, cmd)
    """
)


def processes(name: str) -> list[tuple[float, str]]:
    """(proportional set size in bytes, command line) of each process in the container."""
    out = docker("exec", name, "python", "-c", PROCESS_LISTING)
    return sorted(((float(n), cmd) for n, cmd in (line.split(" ", 1) for line in
                  out.splitlines())), reverse=True)  # fmt: skip


def mem_limit_text() -> str:
    """JUPYTERHUB_MEM_LIMIT's default (settings.py) and the value .env.example suggests."""
    example = Path(__file__).resolve().parents[1] / ".env.example"
    found = re.search(r"^JUPYTERHUB_MEM_LIMIT=(\S*)", example.read_text(), re.M)
    default = settings.read({}, complete=False)["JUPYTERHUB_MEM_LIMIT"] or "none"
    text = f"JUPYTERHUB_MEM_LIMIT: default {default}"
    if found and found.group(1):
        suggested = found.group(1)
        limit = mem_bytes(suggested.upper() + "iB")
        text += (f", {suggested} in .env.example, a cap and no reservation: "
                 f"{HOST_MEMORY // limit:.0f} users at that cap fill the host")  # fmt: skip
    return text


class Report:
    """Prints one figure per image: median, runs, and the ratio to the baseline (the first)."""

    def __init__(self, images: dict[str, str], starts: dict[str, list[dict]]):
        self.images, self.starts = images, starts
        self.names = {label: f"{label} ({image})" for label, image in images.items()}
        self.width = max(map(len, self.names.values()))

    def figure(self, title, value, mib=False, goal=""):
        print(title + (f" (goal {goal})" if goal else ""))
        base = None
        for label, runs in self.starts.items():
            values = [value(run) for run in runs if value(run) is not None]
            if not values:
                print(f"  {self.names[label]:{self.width}}  not asked (its page config)")
                continue
            m = statistics.median(values)
            ratio = f"  ratio {m / base:.2f}" if base else ""
            base = base or m
            show = (lambda v: f"{v / 2**20:.0f} MiB") if mib else (lambda v: f"{v:.2f} s")
            print(f"  {self.names[label]:{self.width}}  median {show(m):>8}{ratio}"
                  f"  (runs: {', '.join(show(v) for v in values)})")  # fmt: skip

    def print(self, floor: list[float]):
        self.figure("server start: container created -> /api/status answers",
                    lambda r: r["ready"], goal="<= 1.5 s")  # fmt: skip
        print(f"  floor, a container of {list(self.images.values())[-1]} running python -m "
              f"http.server: median {statistics.median(floor):.2f} s")  # fmt: skip
        for phase in PHASES:
            self.figure(f"  phase: {phase}", lambda r, p=phase: r["phases"][p])
        self.figure("  CPU time the container used until then", lambda r: r["cpu"])
        for request in LAB_REQUESTS:
            self.figure(f"first lab request: {request}", lambda r, k=request: r["lab"].get(k))
        self.figure("idle server memory (docker stats), no kernel", lambda r: r["memory"],
                    mib=True, goal="<= 80 MB")  # fmt: skip
        self.figure("idle server memory with one idle Python kernel",
                    lambda r: r["memory with kernel"], mib=True)  # fmt: skip
        print(f"idle users a {HOST_MEMORY / 2**30:.0f} GiB host holds (its memory / the median; "
              f"hub and system not counted; {mem_limit_text()}):")  # fmt: skip
        for label, runs in self.starts.items():
            idle = statistics.median(r["memory"] for r in runs)
            busy = statistics.median(r["memory with kernel"] for r in runs)
            print(f"  {self.names[label]:{self.width}}  {HOST_MEMORY // idle:.0f} without a "
                  f"kernel, {HOST_MEMORY // busy:.0f} with one idle Python kernel")  # fmt: skip
        for label, runs in self.starts.items():
            print(f"processes after the last start of {self.names[label]}, with the kernel "
                  "(proportional set size):")  # fmt: skip
            for pss, command in runs[-1]["processes"]:
                print(f"  {pss / 2**20:6.1f} MiB  {command}")


def compared(title, value, baseline, unit, goal) -> str:
    text = f"{title}: {value:.2f} {unit}"
    if baseline:
        text += f" (baseline {baseline:.2f} {unit}, ratio {value / baseline:.2f})"
    return f"{text}; goal <= {goal} {unit}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=f"openbis-jupyterhub/singleuser:{IMAGE_TAG}")
    parser.add_argument(
        "--baseline-image", help="measured in the same run, alternating with --image"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-kernels", action="store_true", help="skip the kernel start times")
    args = parser.parse_args()

    images = {"baseline": args.baseline_image} if args.baseline_image else {}
    images["image"] = args.image
    starts = {label: [] for label in images}
    floor = []
    bench = Bench(args.image)
    try:
        for _ in range(args.runs):
            for label, image in images.items():
                starts[label].append(bench.start(image))
            floor.append(bench.floor(args.image))
        Report(images, starts).print(floor)

        sizes = {
            label: int(docker("image", "inspect", "-f", "{{.Size}}", image)) / 1e9
            for label, image in images.items()
        }
        print(compared("image size", sizes["image"], sizes.get("baseline"), "GB", 1.2))
        if not args.no_kernels:
            kernels = {label: {name: [] for name in KERNEL_CODE} for label in images}
            for _ in range(args.runs):
                for label, image in images.items():
                    name, _, _ = bench.run(image, ("sleep", "infinity"))
                    out = docker(
                        "exec", name, "python", "-c", KERNEL_TIMER, json.dumps(KERNEL_CODE),
                        "1", timeout=1200,
                    )  # fmt: skip
                    for kernel, times in json.loads(out).items():
                        kernels[label][kernel] += times
            for kernel, goal in KERNEL_GOAL_SECONDS.items():
                baseline = kernels.get("baseline", {}).get(kernel)
                print(
                    compared(
                        f"kernel {kernel:7} start to first result",
                        statistics.median(kernels["image"][kernel]),
                        statistics.median(baseline) if baseline else None,
                        "s",
                        goal,
                    )
                )
    finally:
        bench.close()


if __name__ == "__main__":
    main()
