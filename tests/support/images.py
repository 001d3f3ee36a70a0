"""Our images, built as an admin builds them (scripts/build: `make build` with the double's
compose file), under the names `make up` uses: after `make test`, `make up` builds nothing.
TEST_IMAGE_TAG (default latest) keeps test runs of several checkouts on one engine apart.
And the docker CLI, for everything the tests do with the engine directly."""

import os
import subprocess

from tests.support import REPO_ROOT

IMAGE_TAG = os.environ.get("TEST_IMAGE_TAG") or "latest"
IMAGES = {
    "JUPYTERHUB_HUB_IMAGE": f"openbis-jupyterhub/hub:{IMAGE_TAG}",
    "JUPYTERHUB_SINGLEUSER_IMAGE": f"openbis-jupyterhub/singleuser:{IMAGE_TAG}",
    "OPENBIS_DOUBLE_IMAGE": f"openbis-jupyterhub/openbis-double:{IMAGE_TAG}",
    "JUPYTERHUB_DOCKER_PROXY_IMAGE": f"openbis-jupyterhub/docker-proxy:{IMAGE_TAG}",
}
SINGLEUSER_IMAGE = IMAGES["JUPYTERHUB_SINGLEUSER_IMAGE"]
HUB_IMAGE = IMAGES["JUPYTERHUB_HUB_IMAGE"]
OPENBIS_DOUBLE_IMAGE = IMAGES["OPENBIS_DOUBLE_IMAGE"]
DOCKER_PROXY_IMAGE = IMAGES["JUPYTERHUB_DOCKER_PROXY_IMAGE"]


def admin_environment(**extra) -> dict:
    """The process environment as on an admin's shell: none of our settings (a developer's
    shell or .env must not leak in), the image names of this test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "OPENBIS_"))}
    env.pop("COMPOSE", None)
    return {**env, **IMAGES, **extra}


def build_images() -> dict:
    """Build the hub, single-user and openBIS double images as `make build` does; returns
    their names. Also used by the benchmarks."""
    compose = "docker compose -f compose.yaml -f compose.double.yaml --env-file /dev/null"
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build")],
        env=admin_environment(COMPOSE=compose, OPENBIS_URL="https://x.invalid"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/build failed:\n{result.stdout[-3000:]}{result.stderr[-5000:]}")
    return {
        "hub": HUB_IMAGE,
        "singleuser": SINGLEUSER_IMAGE,
        "openbis-double": OPENBIS_DOUBLE_IMAGE,
        "docker-proxy": DOCKER_PROXY_IMAGE,
    }


def docker(*args, timeout=120, check=True):
    """Run the docker CLI; returns its stdout."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed: {result.stderr.strip()}")
    return result.stdout
