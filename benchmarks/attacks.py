"""How the hub and another user's server answer while one user runs a bomb: prints, asserts nothing.

On a compose stack of its own (the attack suite's limits: 1 GB, 1 CPU, 256 processes, 64 MB
/tmp), JDoe runs each bomb of tests/support/attacks.py in a kernel of their container while
this script times, every 0.2 s, the hub (GET /hub/api/) and alice's server
(GET /user/alice/api/status, alice's token) through the public port. Goal: median <= 1 s
during every bomb.

Run: .venv/bin/python -m benchmarks.attacks [--repeat 1]
(builds the images when missing, like the tests; TEST_IMAGE_TAG picks their tag)
"""

import argparse
import tempfile
import time
from pathlib import Path

from tests.support import attacks
from tests.support.attacks import ATTACKER, LIMITS, VICTIM, fields, probes, start_server
from tests.support.compose_stack import ComposeStack
from tests.support.images import build_images
from tests.support.jupyter_api import KernelSession


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each bomb")
    args = parser.parse_args()
    images = build_images()
    with tempfile.TemporaryDirectory() as tmp:
        stack = ComposeStack(
            Path(tmp), images["hub"], images["singleuser"], images["openbis-double"], **LIMITS
        )
        try:
            stack.up()
            for user in (ATTACKER, VICTIM):
                start_server(stack, user)
            tokens = {user: stack.api_token(user) for user in (ATTACKER, VICTIM)}
            kernel = KernelSession(
                f"{stack.url}/user/{ATTACKER}/", tokens[ATTACKER], ca_file=str(stack.ca_file)
            )
            kernel.execute(attacks.PRELUDE + attacks.setup(**fields(stack)))
            # the idle baseline: nobody bombs
            _, idle = attacks.during(lambda: time.sleep(5), probes(stack, tokens))
            print(f"{'while':<14}{'probe':<18}{'median s':>10}{'max s':>10}{'n':>5}")
            report("idle", idle)
            for bomb, code in attacks.BOMBS.items():
                for _ in range(args.repeat):
                    output, times = attacks.during(
                        lambda code=code: kernel.execute(code, timeout=300),
                        probes(stack, tokens),
                    )
                    report(f"{bomb} bomb", times)
                    print(f"{'':<14}  ({output[0].strip()[:110]})")
            kernel.shutdown()
        finally:
            stack.remove()


def report(label, times):
    for name, samples in times.items():
        print(
            f"{label:<14}{name:<18}{attacks.median(samples):>10.3f}"
            f"{max(samples, default=float('inf')):>10.3f}{len(samples):>5}"
        )


if __name__ == "__main__":
    main()
