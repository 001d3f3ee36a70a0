"""30 concurrent ELN journeys on a three-node Docker Swarm, beside the same on the single-host
Compose stack: prints, asserts nothing.

Journey (benchmarks/compose_journey.py's hub part, without a browser): a new user's openBIS
token, the ELN's two POSTs to /hub/openbis-notebook (which start the user's server), then the
ELN's link followed (token sign-in, OAuth with the user's server) until the notebook page's
HTML, and the notebook's contents API. All
CONCURRENT users start at once; each is new (no server, no volume).

- swarm: tests/support/swarm_cluster.py (the host engine as manager, two worker engines in network
  namespaces), the stack deployed by `make swarm-up`, user servers only on the workers;
  reports how many users landed on each worker;
- compose: tests/support/compose_stack.py, the stack `make up` runs, on the host engine.
Same images, same machine (2 cores here: the workers share them with the manager), one after
the other. Goal: every journey succeeds (30/30), users spread over the workers.

Run as root: .venv/bin/python -m benchmarks.swarm_journey [--concurrent 30] [--only swarm]
(builds the images when missing, like the tests; a few minutes)
"""

import argparse
import collections
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.compose_journey import hub_journey, print_outcomes
from tests.support.compose_stack import ComposeStack
from tests.support.images import build_images
from tests.support.swarm_cluster import SwarmCluster, run
from tests.support.swarm_stack import SwarmStack


def crowd(stack, concurrent, label):
    """All users' journeys at once, each a new user; prints the summary, returns the users."""
    users = [f"crowd{i}" for i in range(concurrent)]
    for user in users:
        stack.control.add_user(user, f"{user}-password")
    with ThreadPoolExecutor(concurrent) as pool:
        start = time.perf_counter()
        runs = [pool.submit(hub_journey, stack, user, stack.session()) for user in users]
        outcomes = [run.exception() or run.result() for run in runs]
        wall = time.perf_counter() - start
    print_outcomes(f"{label:<8}", outcomes, wall)
    return users


def on_swarm(images, concurrent, workdir):
    cluster = SwarmCluster(workers=2)
    tags = {k: f"{v.rsplit(':', 1)[0]}:obswarm-{cluster.id}" for k, v in images.items()}
    for key, tag in tags.items():
        run("docker", "tag", images[key], tag)
    stack = None
    try:
        cluster.start()
        cluster.load_images([tags["singleuser"]])
        stack = SwarmStack(
            Path(workdir), cluster, tags["hub"], tags["singleuser"], tags["openbis-double"]
        ).up()
        users = crowd(stack, concurrent, "swarm")
        nodes = collections.Counter()
        for user in users:
            if stack.service_name(user):
                nodes[stack.user_node(user)] += 1
        names = {w.node_id: w.name for w in cluster.workers} | {cluster.manager_id: "manager"}
        print("         users per node:", ", ".join(f"{names[n]} {k}" for n, k in nodes.items()))
    finally:
        if stack is not None:
            stack.remove()
        cluster.remove()
        run("docker", "rmi", *tags.values(), check=False)


def on_compose(images, concurrent, workdir):
    stack = ComposeStack(
        Path(workdir), images["hub"], images["singleuser"], images["openbis-double"]
    )
    try:
        stack.up()
        crowd(stack, concurrent, "compose")
    finally:
        stack.remove()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrent", type=int, default=30)
    parser.add_argument("--only", choices=["swarm", "compose"])
    args = parser.parse_args()
    images = build_images()
    print(f"{args.concurrent} new users at once, ELN POSTs to notebook page (no browser)")
    for name, bench in [("swarm", on_swarm), ("compose", on_compose)]:
        if args.only in (None, name):
            with tempfile.TemporaryDirectory() as workdir:
                bench(images, args.concurrent, workdir)


if __name__ == "__main__":
    main()
