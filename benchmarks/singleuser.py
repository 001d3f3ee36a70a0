"""Single-user image: size, each kernel's start-to-first-result, container start to server ready.

    .venv/bin/python -m benchmarks.singleuser [--image IMAGE] [--runs 5]

Prints medians; asserts nothing. Goals (issue 5): image <= 1.5 GB (upstream: 4.75 GB), every
kernel <= 1.5 s to its first result. Builds nothing: build the image first
(`make build`).
"""

import argparse
import json
import statistics
import subprocess
import textwrap
import time
import urllib.request
import uuid

# the container set-up of the image's tests: the spawner's environment and a hub stand-in
from test_singleuser_image import SERVER_COMMAND, hub_environment

UPSTREAM_IMAGE_BYTES = 4.75e9
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


def docker(*args, timeout=300):
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


def start_server(image, name):
    """docker run; returns seconds until /user/bench/api answers (at most 60 s)."""
    args = ["run", "-d", "--name", name, "-p", "127.0.0.1::8888"]
    for key, value in hub_environment("bench").items():
        args += ["-e", f"{key}={value}"]
    start = time.perf_counter()
    docker(*args, image, *SERVER_COMMAND)
    port = docker("port", name, "8888/tcp").split()[0].rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{port}/user/bench/api"
    while time.perf_counter() - start < 60:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name}: server not ready after 60 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="openbis-jupyterhub/singleuser:latest")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    size = int(docker("image", "inspect", "-f", "{{.Size}}", args.image))
    print(f"image size: {size / 1e9:.2f} GB (upstream {UPSTREAM_IMAGE_BYTES / 1e9:.2f} GB, "
          f"ratio {size / UPSTREAM_IMAGE_BYTES:.2f}; goal <= 1.5 GB)")  # fmt: skip

    prefix = f"bench-singleuser-{uuid.uuid4().hex[:8]}"
    ready = []
    try:
        for i in range(args.runs):
            ready.append(start_server(args.image, f"{prefix}-{i}"))
            if i < args.runs - 1:
                docker("rm", "-f", f"{prefix}-{i}")
        print(f"container start to server ready: median {statistics.median(ready):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in ready)})")  # fmt: skip

        out = docker(
            "exec", f"{prefix}-{args.runs - 1}", "python", "-c", KERNEL_TIMER,
            json.dumps(KERNEL_CODE), str(args.runs), timeout=1200,
        )  # fmt: skip
        baseline = statistics.median(json.loads(out)["python3"])
        for name, times in json.loads(out).items():
            median = statistics.median(times)
            print(f"kernel {name:8} start to first result: median {median:.2f} s "
                  f"({median / baseline:.1f}x python3; goal <= 1.5 s)")  # fmt: skip
    finally:
        for i in range(args.runs):
            subprocess.run(
                ["docker", "rm", "-f", f"{prefix}-{i}"], capture_output=True, check=False
            )


if __name__ == "__main__":
    main()
