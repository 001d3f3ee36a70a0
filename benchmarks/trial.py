"""`make trial` from a fresh clone with the images built: seconds until the printed address
answers (goal <= 20 s). Prints medians; asserts nothing.

    .venv/bin/python -m benchmarks.trial [--runs 3]

Each run starts from nothing but the images, in a clone of this checkout (as a newcomer's),
under its own trial name and free ports, and ends with `make trial-down`.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid

from tests.support import REPO_ROOT
from tests.support.images import admin_environment, build_images
from tests.support.processes import free_port


def run(command, env, cwd):
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True, timeout=600)


def one_trial(clone):
    name = f"obbench-{uuid.uuid4().hex[:6]}"
    env = admin_environment(
        TRIAL_NAME=name, TRIAL_PORT=str(free_port()), TRIAL_ELN_PORT=str(free_port())
    )
    address = f"http://localhost:{env['TRIAL_ELN_PORT']}/openbis/webapp/eln-lims/"
    start = time.perf_counter()
    try:
        run(["make", "trial"], env, clone)
        with urllib.request.urlopen(address, timeout=10) as page:  # noqa: S310 (our loopback)
            assert page.status == 200
        return time.perf_counter() - start
    finally:
        run(["make", "trial-down"], env, clone)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    build_images()
    with tempfile.TemporaryDirectory() as tmp:
        clone = os.path.join(tmp, "clone")
        run(["git", "clone", "-q", str(REPO_ROOT), clone], dict(os.environ), tmp)
        times = [one_trial(clone) for _ in range(args.runs)]
    median = statistics.median(times)
    print(f"make trial until the ELN stand-in answers, {args.runs} runs (images built)")
    print(
        f"  median {median:5.1f} s   min {min(times):5.1f}   max {max(times):5.1f}   goal <= 20 s"
    )


if __name__ == "__main__":
    main()
