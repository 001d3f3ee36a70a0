"""What internal_ssl costs per request through the proxy: prints, asserts nothing.

Two compose stacks side by side, JUPYTERHUB_INTERNAL_SSL=true and =false; JDoe's server
started through the ELN endpoint on each; then GET /user/JDoe/api/status with JDoe's token
through each stack's public port, in interleaved batches (so that load on the machine falls
on both alike). A JupyterLab page makes ~100 such requests through the proxy: a per-request
cost there is what a user feels. Prints the medians and the ratio on/off.

Run: .venv/bin/python -m benchmarks.internal_ssl [--batches 6] [--batch 10]
(builds the images when missing, like the tests; TEST_IMAGE_TAG picks their tag)
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.compose_stack import ELN_ORIGIN, ComposeStack
from tests.support.eln import eln_post
from tests.support.images import build_images


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6, help="batches per stack")
    parser.add_argument("--batch", type=int, default=10, help="requests per batch")
    args = parser.parse_args()
    images = build_images()
    with tempfile.TemporaryDirectory() as tmp:
        stacks = {}
        try:
            for label, value in (("on", "true"), ("off", "false")):
                workdir = Path(tmp) / label
                workdir.mkdir()
                stacks[label] = stack = ComposeStack(
                    workdir,
                    images["hub"],
                    images["singleuser"],
                    images["openbis-double"],
                    JUPYTERHUB_INTERNAL_SSL=value,
                )
                stack.up()
            clients = {}
            for label, stack in stacks.items():
                status, _, answer = eln_post(
                    stack, stack.login("JDoe"), "x", "x.ipynb", "True", b"TEST", ELN_ORIGIN
                )
                assert status == 200, answer
                http = stack.session()
                http.headers["Authorization"] = f"token {stack.api_token('JDoe')}"
                clients[label] = http, f"{stack.url}/user/JDoe/api/status"
            times = {label: [] for label in stacks}
            for _ in range(args.batches):
                for label, (http, url) in clients.items():
                    for _ in range(args.batch):
                        start = time.perf_counter()
                        http.get(url, timeout=60).raise_for_status()
                        times[label].append(time.perf_counter() - start)
            for label, values in times.items():
                print(
                    f"internal_ssl {label:3}: median {statistics.median(values) * 1000:.1f} ms "
                    f"per request through the proxy (n={len(values)})"
                )
            ratio = statistics.median(times["on"]) / statistics.median(times["off"])
            print(f"ratio on/off: {ratio:.2f}")
        finally:
            for stack in stacks.values():
                stack.remove()


if __name__ == "__main__":
    main()
