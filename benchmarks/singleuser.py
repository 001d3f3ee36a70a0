"""Single-user image: size, each kernel's start-to-first-result, container start to server ready.

    .venv/bin/python -m benchmarks.singleuser [--image IMAGE] [--baseline-image IMAGE] [--runs 5]

Prints medians; asserts nothing. With --baseline-image, both images are measured in the same
run, their runs interleaved (so that CPU contention on a shared machine hits both alike), and
each figure is printed beside the baseline's with the ratio image/baseline. Goals (issue 14):
image <= 1.2 GB; kernel start to first result <= 1.0 s for Python and Bash, <= 1.5 s for R,
Octave and SoS. Builds nothing: build the images first (`make build`).
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
from tests.test_singleuser_image import SERVER_COMMAND, hub_environment

KERNEL_CODE = {
    "python3": "print(42)",
    "ir": "cat(42)",
    "octave": "disp(42)",
    "bash": "echo 42",
    "sos": "print(42)",
}
KERNEL_GOAL_SECONDS = {"python3": 1.0, "bash": 1.0, "ir": 1.5, "octave": 1.5, "sos": 1.5}
# Runs in the container: start each kernel, run one cell, wait for its result, shut down.
KERNEL_TIMER = textwrap.dedent(
    """
    import json, sys, time
    from jupyter_client.manager import start_new_kernel

    code = json.loads(sys.argv[1])
    times = {}
    for name, source in code.items():
        start = time.perf_counter()
        km, kc = start_new_kernel(kernel_name=name, startup_timeout=60)
        outputs = []
        kc.execute_interactive(source, timeout=60, output_hook=outputs.append)
        times[name] = time.perf_counter() - start
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


def line(label, times, baseline=None, goal=None, unit="s"):
    """`label: median` (and the baseline's median with the ratio), runs and goal."""
    median = statistics.median(times)
    text = f"{label}: median {median:.2f} {unit}"
    if baseline:
        base = statistics.median(baseline)
        text += f" (baseline {base:.2f} {unit}, ratio {median / base:.2f})"
    text += f"; runs {', '.join(f'{t:.2f}' for t in times)}"
    if goal:
        text += f"; goal <= {goal} {unit}"
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="openbis-jupyterhub/singleuser:latest")
    parser.add_argument("--baseline-image", help="measured in the same run, for the ratios")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    images = [args.image] + ([args.baseline_image] if args.baseline_image else [])

    sizes = {i: int(docker("image", "inspect", "-f", "{{.Size}}", i)) / 1e9 for i in images}
    ready = {i: [] for i in images}
    kernels = {i: {name: [] for name in KERNEL_CODE} for i in images}
    prefix = f"bench-singleuser-{uuid.uuid4().hex[:8]}"
    names = []
    try:
        for run in range(args.runs):
            for n, image in enumerate(images):
                name = f"{prefix}-{n}-{run}"
                names.append(name)
                ready[image].append(start_server(image, name))
                out = docker(
                    "exec", name, "python", "-c", KERNEL_TIMER, json.dumps(KERNEL_CODE),
                    timeout=600,
                )  # fmt: skip
                for kernel, seconds in json.loads(out).items():
                    kernels[image][kernel].append(seconds)
                docker("rm", "-f", name)
    finally:
        for name in names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)

    base = args.baseline_image
    print(f"image {args.image}" + (f", baseline {base}" if base else ""))
    print(line("image size", [sizes[args.image]], base and [sizes[base]], 1.2, "GB"))
    print(line("container start to server ready", ready[args.image], base and ready[base]))
    for kernel, goal in KERNEL_GOAL_SECONDS.items():
        print(
            line(
                f"kernel {kernel:7} start to first result",
                kernels[args.image][kernel],
                base and kernels[base][kernel],
                goal,
            )
        )


if __name__ == "__main__":
    main()
