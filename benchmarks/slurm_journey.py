"""ELN click to notebook page on the Slurm path, beside the compose path in the same run:
prints, asserts nothing.

Journey (benchmarks/compose_journey.py's hub part, without a browser, as swarm_journey.py):
a user's openBIS token, the ELN's two POSTs to /hub/openbis-notebook (the first starts the
user's server when none runs and waits for it), then the ELN's link followed (token sign-in,
OAuth with the user's server) until the notebook page's HTML, and the notebook's contents API.

- slurm: tests/support/slurm_cluster.py (two nodes, node2 across a network namespace), the
  hub of deploy/slurm/ as an unprivileged user with the sudoers rule, user servers as Slurm
  jobs on node2 running the single-user image with Charliecloud;
- compose: tests/support/compose_stack.py, the stack `make up` runs, on the host engine.
Scenarios, median of RUNS each, interleaved run by run (slurm, then compose):
- cold: a user with no server (Slurm: a new cluster account, a new job; compose: a new user,
  a new container and volume); the Slurm job is stopped after each run (node2 holds two);
- warm: the same user again, server running, a new notebook each time.
Ratio = slurm / compose. Same images, same machine (2 cores here: the nodes share them).

Run as root: .venv/bin/python -m benchmarks.slurm_journey [--runs 5]
(builds the images when missing, like the tests; converts the single-user image for
Charliecloud once per build; a few minutes)
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.compose_journey import hub_journey
from tests.support.compose_stack import ELN_ORIGIN, ComposeStack
from tests.support.double import start_openbis_double
from tests.support.images import build_images
from tests.support.slurm_cluster import HOST_IP, SlurmCluster, charliecloud_image, start_slurm_hub


class SlurmSide:
    """The Slurm hub, driven as hub_journey drives a stack (``url``, ``login``, ``session``)."""

    def __init__(self, cluster, double, hub):
        self.cluster, self.double, self.hub = cluster, double, hub
        self.stack, self.url, self.ca_file = self, hub.url, double.ca_file

    def new_user(self, user):
        """An openBIS user and the cluster account of the same name."""
        self.double.control.add_user(user, f"{user}-password")
        self.cluster.add_user(user)

    def login(self, user) -> str:
        return self.double.control.login(user, f"{user}-password")

    @staticmethod
    def session() -> requests.Session:
        return requests.Session()

    def after_cold(self, user):
        """The user's server stopped, its job gone: node2 runs two servers at a time."""
        self.hub.api(f"/users/{user}/server", method="DELETE")
        deadline = time.monotonic() + 60
        while self.cluster.jobs(user) and time.monotonic() < deadline:
            time.sleep(0.2)


class ComposeSide:
    def __init__(self, stack):
        self.stack = stack

    def new_user(self, user):
        self.stack.control.add_user(user, f"{user}-password")

    def after_cold(self, user):
        """Nothing: the engine runs every cold user's container till the end."""


def measure(runs, sides):
    """{scenario: {side: [seconds, …]}}, run by run: cold then warm, each side in turn."""
    times = {scenario: {name: [] for name in sides} for scenario in ("cold", "warm")}
    for name, side in sides.items():
        side.new_user(f"warm{name}")
    for run in range(runs):
        for name, side in sides.items():
            user = f"cold{run}{name}"
            side.new_user(user)
            times["cold"][name].append(hub_journey(side.stack, user, side.stack.session()))
            side.after_cold(user)
        for name, side in sides.items():
            user = f"warm{name}"
            if run == 0:  # its server starts (a cold journey), not counted
                hub_journey(side.stack, user, side.stack.session())
            times["warm"][name].append(hub_journey(side.stack, user, side.stack.session()))
    return times


def report(times, runs):
    print(f"ELN POSTs to notebook page (no browser), median of {runs} runs (seconds)")
    print(f"{'':<8}{'slurm':>8}{'compose':>9}{'ratio':>7}   runs: slurm | compose")
    for scenario, sides in times.items():
        slurm, compose = (statistics.median(sides[s]) for s in ("slurm", "compose"))
        each = " ".join(f"{t:.2f}" for t in sides["slurm"]) + " | "
        each += " ".join(f"{t:.2f}" for t in sides["compose"])
        print(f"{scenario:<8}{slurm:>8.2f}{compose:>9.2f}{slurm / compose:>7.2f}   {each}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    images = build_images()
    image_dir = charliecloud_image(images["singleuser"])
    cluster = SlurmCluster()
    double = hub = stack = None
    with tempfile.TemporaryDirectory() as workdir:
        try:
            cluster.start()
            directory = cluster.root / "double"
            directory.mkdir(mode=0o755)
            double = start_openbis_double(directory, host=HOST_IP)
            # 1 GiB per server: node2 (4000 MB) holds the warm and a cold user's; the ELN's
            # origin as the compose stack has it
            hub = start_slurm_hub(
                cluster,
                double,
                image_dir,
                JUPYTERHUB_MEM_LIMIT="1G",
                OPENBIS_ELN_ORIGINS=ELN_ORIGIN,
            )
            stack = ComposeStack(
                Path(workdir), images["hub"], images["singleuser"], images["openbis-double"]
            )
            stack.up()
            sides = {"slurm": SlurmSide(cluster, double, hub), "compose": ComposeSide(stack)}
            report(measure(args.runs, sides), args.runs)
        finally:
            if stack is not None:
                stack.remove()
            if hub is not None:
                hub.stop_all_servers()
                hub.stop()
            if double is not None:
                double.stop()
            cluster.remove()


if __name__ == "__main__":
    main()
