"""The admin's path on a stock Docker host: `make build` and `make up` need Docker and make,
nothing else; the offline fallback engages only where no registry has the base image.

"Stock host" is played by shims that fail loudly and log their call, earlier on PATH than the
real debootstrap, pip and python; the base image is present, as after a `docker pull`.
"""

import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from tests.support.images import admin_environment
from tests.support.processes import free_port

pytestmark = pytest.mark.docker
SHIMMED = ["debootstrap", "pip", "pip3", "python", "python3"]


@pytest.fixture
def stock_host(tmp_path):
    """(environment, shim log): PATH starts with failing shims of SHIMMED."""
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "shims.log"
    for name in SHIMMED:
        shim = shims / name
        shim.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 1\n')
        shim.chmod(0o755)
    env = admin_environment()
    env["PATH"] = f"{shims}:{env['PATH']}"
    return env, log


def make(target, env, *args, timeout=900, directory=REPO_ROOT):
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(directory), target, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_make_build_and_up_on_a_stock_host(images, stock_host, tmp_path):
    env, log = stock_host
    name = f"obadmin-{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = tmp_path / "admin.env"  # what an admin's .env holds
    settings.write_text(
        "OPENBIS_URL=https://openbis.example.org\n"
        f"JUPYTERHUB_PUBLIC_URL=https://localhost:{port}\n"
        f"JUPYTERHUB_PORT=127.0.0.1:{port}\n"
        f"JUPYTERHUB_NETWORK={name}\n"
        f"JUPYTERHUB_CONTAINER_PREFIX={name}\n"
        f"JUPYTERHUB_VOLUME_PREFIX={name}-user-\n"
    )
    compose = f"COMPOSE=docker compose -p {name} --env-file {settings}"
    try:
        build = make("build", env, compose)
        assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
        assert "offline build" not in build.stdout
        up = make("up", env, compose)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        endpoint = (
            f"jupyterIntegrationServerEndpoint = https://localhost:{port}/hub/openbis-notebook"
        )
        assert endpoint in up.stdout
        assert "hub:/srv/jupyterhub/tls/self-signed-localhost.crt" in up.stdout
    finally:
        make("down", env, compose)
        subprocess.run(
            ["docker", "volume", "rm", f"{name}_hub-state"], capture_output=True, check=False
        )
    assert not log.exists(), f"the stock host's tools were called: {log.read_text()}"


def test_offline_fallback_engages_with_one_line(stock_host):
    env, log = stock_host
    missing = f"openbis-jupyterhub-test/no-such-base:{uuid.uuid4().hex[:8]}"
    compose = "COMPOSE=docker compose --env-file /dev/null"
    build = make(
        "build", {**env, "OPENBIS_URL": "https://x.invalid"}, compose, f"BASE_IMAGE={missing}"
    )
    assert build.returncode != 0  # our debootstrap shim fails
    lines = [line for line in build.stdout.splitlines() if line.startswith("offline build:")]
    assert lines == [
        f"offline build: {missing} can neither be found nor pulled; making it with "
        "debootstrap, wheels in a container"
    ]
    assert log.read_text().startswith("debootstrap --variant=minbase bookworm")


def test_image_builds_trust_the_hosts_ca_bundle_unless_told_otherwise(stock_host, tmp_path):
    """pip in the build stages trusts images/build-ca/build-ca.pem: by default this host's CA
    bundle (a host behind a TLS-inspecting proxy trusts that proxy there); BUILD_CA_FILE wins."""
    env, _ = stock_host
    env = {k: v for k, v in env.items() if k != "BUILD_CA_FILE"}
    missing = f"openbis-jupyterhub-test/no-such-base:{uuid.uuid4().hex[:8]}"
    args = ["COMPOSE=docker compose --env-file /dev/null", f"BASE_IMAGE={missing}"]
    own_ca = tmp_path / "proxy-ca.pem"
    own_ca.write_text(
        "-----BEGIN CERTIFICATE-----\nMIIB (a proxy's CA)\n-----END CERTIFICATE-----\n"
    )
    host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    for extra, expected in [({"BUILD_CA_FILE": str(own_ca)}, own_ca), ({}, host_bundle)]:
        # stops at the offline path's debootstrap (a failing shim), after the CA is in place
        build = make("build", {**env, "OPENBIS_URL": "https://x.invalid", **extra}, *args)
        assert build.returncode != 0
        used = REPO_ROOT / "images" / "build-ca" / "build-ca.pem"
        assert used.read_bytes() == expected.read_bytes(), extra


@pytest.mark.parametrize(
    "target, setting",
    [("trial", "TRIAL_PORT"), ("trial", "TRIAL_ELN_PORT"), ("up", "JUPYTERHUB_PORT")],
)
def test_a_port_in_use_is_named_with_the_setting_that_moves_it(
    stock_host, tmp_path, target, setting
):
    env, _ = stock_host
    name = f"obports-{uuid.uuid4().hex[:8]}"
    with socket.socket() as taken:  # another server on this host has the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = tmp_path / "admin.env"  # make up's: what an admin's .env holds
        settings.write_text(
            "OPENBIS_URL=https://openbis.example.org\n"
            f"JUPYTERHUB_PUBLIC_URL=https://localhost:{port}\n"
            f"JUPYTERHUB_PORT=127.0.0.1:{port}\n"
            f"JUPYTERHUB_NETWORK={name}\n"
        )
        ports = {"TRIAL_PORT": str(free_port()), "TRIAL_ELN_PORT": str(free_port())}
        env = {**env, **ports, setting: str(port), "TRIAL_NAME": name}
        compose = f"COMPOSE=docker compose -p {name} --env-file {settings}"
        run = make(target, env, compose, timeout=120)
    assert run.returncode != 0
    # make's own line: "make:", or "make[1]:" under another make (make test)
    ours = [line for line in run.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)]
    assert ours == [
        f"{target}: port {port} is in use on this host (set by {setting}): stop what uses it, "
        f"or set {setting} to a free port"
    ]
    started = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert not started.stdout.strip()


def test_make_up_without_settings_says_what_to_do(stock_host, tmp_path):
    """A fresh clone: no .env. Played by a folder with the repository's scripts and files."""
    env, _ = stock_host
    checkout = tmp_path / "clone"
    checkout.mkdir()
    for name in ["Makefile", "scripts", "compose.yaml"]:
        (checkout / name).symlink_to(REPO_ROOT / name)
    up = make("up", env, directory=checkout)
    assert up.returncode != 0
    assert up.stderr.splitlines()[:2] == [
        "No settings yet (no .env). To try it without an openBIS: make trial",
        "For production: cp .env.example .env, set OPENBIS_URL and JUPYTERHUB_PUBLIC_URL, make up",
    ]
