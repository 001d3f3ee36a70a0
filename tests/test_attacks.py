"""A hostile user gets nothing: tests/support/attacks.py's notebook of attacks, run as the
signed-in user JDoe in their real container on the compose stack, each cell asserting its
refusal; then the bombs, while the hub and alice's server are timed; then both users' ELN
journey still works.
With internal_ssl (the default) the attacker also holds its own server's TLS certificate and key
and presents them everywhere.

The stack is this module's own (tighter limits than the defaults, so that bombs stay small on a
shared test machine): 1 GB memory, 1 CPU, 256 processes, a 64 MB /tmp, 1 MB notebooks; its
public URL has a host name, as in production.
"""

import hashlib
import json
import subprocess

import pytest

from tests.support import attacks
from tests.support.attacks import ATTACKER, LIMITS, VICTIM, fields, probes, start_server
from tests.support.compose_stack import ELN_ORIGIN, ComposeStack
from tests.support.eln import eln_new_notebook, eln_notebook
from tests.support.jupyter_api import KernelSession

pytestmark = pytest.mark.docker

RAW_CSV = "20240115093000000-4"
OWNER = {"@type": "as.dto.sample.Sample", "identifier": {"identifier": "/LAB/PROJ/SAMPLE1"}}


@pytest.fixture(scope="module")
def stack(hub_image, singleuser_image, openbis_double_image, tmp_path_factory):
    stack = ComposeStack(
        tmp_path_factory.mktemp("attacks"),
        hub_image,
        singleuser_image,
        openbis_double_image,
        **LIMITS,
    )
    try:
        yield stack.up()
    finally:
        # what the hub logged during the attacks, for whoever reads a failure
        (stack.workdir / "hub.log").write_text(stack.logs())
        stack.remove()


@pytest.fixture(scope="module")
def tokens(stack):
    for user in (ATTACKER, VICTIM):
        start_server(stack, user)
    return {user: stack.api_token(user) for user in (ATTACKER, VICTIM)}


@pytest.fixture(scope="module")
def notebook(stack, tokens):
    """The attacker's notebook: one kernel in JDoe's container for every cell."""
    kernel = KernelSession(
        f"{stack.url}/user/{ATTACKER}/", tokens[ATTACKER], ca_file=str(stack.ca_file)
    )
    output, error = kernel.execute(attacks.PRELUDE + attacks.setup(**fields(stack)))
    assert error is None, (output, error)
    yield kernel
    kernel.shutdown()


def run_cell(kernel, code, timeout=300):
    output, error = kernel.execute(code, timeout=timeout)
    assert error is None, (output, error and error["evalue"], error and error["traceback"][-3:])
    assert "refused:" in output, output
    return output


@pytest.mark.parametrize("attack", attacks.ATTACKS, ids=lambda a: a.id)
def test_attack_is_refused(stack, notebook, attack):
    print(run_cell(notebook, attack.code))


@pytest.mark.parametrize("bomb", list(attacks.BOMBS))
def test_bomb_leaves_the_hub_and_others_answering(stack, tokens, notebook, bomb):
    code = attacks.BOMBS[bomb]
    output, times = attacks.during(lambda: run_cell(notebook, code), probes(stack, tokens))
    print(output)
    for name, samples in times.items():
        print(f"{bomb} bomb: {name} median {attacks.median(samples):.3f} s, n={len(samples)}")
        assert attacks.median(samples) < 1.0, (name, samples)
    # the attacker's own server survived its bomb too
    assert stack.user_container(ATTACKER)["State"]["Running"]


def test_container_config_as_docker_sees_it(stack, tokens):
    """What `docker inspect` shows of a user's container: hardened, no credential."""
    container = stack.user_container(ATTACKER)
    host = container["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["PidsLimit"] == 256
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=64M,mode=1777"}
    assert host["Memory"] == host["MemorySwap"] == 1 << 30
    assert not host["Privileged"] and host["NetworkMode"] == stack.project
    # internal_ssl: its certificate and key from a volume of their own, read-only
    home, certs = stack.user_volume(ATTACKER), f"{stack.user_volume(ATTACKER)}.certs"
    assert sorted(host["Binds"]) == sorted([f"{home}:/home/jovyan:rw", f"{certs}:/certs:ro"])
    env = dict(line.split("=", 1) for line in container["Config"]["Env"])
    assert not {"OPENBIS_TOKEN", "OPENBIS_HANDOVER_SECRET"} & set(env)
    assert not any(value.startswith(ATTACKER) and "x" in value for value in env.values())


def test_hub_has_no_docker_socket_and_its_secrets_are_private(stack):
    hub = stack.hub_container_id()
    inspect = json.loads(
        subprocess.run(
            ["docker", "inspect", hub], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    )[0]
    assert not [m for m in inspect["Mounts"] if m["Source"].endswith("docker.sock")]
    listing = stack.compose(
        "exec", "-T", "hub", "stat", "-c", "%a %U %n",
        "/srv/jupyterhub/jupyterhub_crypt_key", "/srv/jupyterhub/jupyterhub_cookie_secret",
    )  # fmt: skip
    for line in listing.splitlines():
        assert line.startswith("600 jupyterhub "), line
    # through the filter, the hub can start a user's container but nothing more powerful
    for options in ("privileged=True", "volumes=['/:/host']", "pid_mode='host'"):
        refused = stack.compose(
            "exec", "-T", "hub", "python3", "-c",
            "import docker\n"
            "c = docker.from_env()\n"
            "try:\n"
            f"    c.containers.create({stack.settings['JUPYTERHUB_SINGLEUSER_IMAGE']!r},"
            f" name='{stack.project}-evil', network_mode={stack.project!r}, {options})\n"
            "except docker.errors.APIError as e:\n"
            "    print(e.status_code, e.explanation)\n",
        )  # fmt: skip
        assert refused.startswith("403 refused by the Docker API filter"), (options, refused)


@pytest.mark.parametrize("user", [ATTACKER, VICTIM])
def test_eln_journey_still_works_for_both(stack, tokens, user):
    token = stack.login(user)
    written, _ = eln_new_notebook(
        stack, token, user, "after attacks", "check",
        lambda name: eln_notebook([], OWNER, name), ELN_ORIGIN,
    )  # fmt: skip
    assert written["path"].startswith("after attacks/check")
    kernel = KernelSession(f"{stack.url}/user/{user}/", tokens[user], ca_file=str(stack.ca_file))
    try:
        output, error = kernel.execute(
            "import hashlib\nfrom pybis import Openbis\no = Openbis()\n"
            "print(hashlib.sha256(o.token.encode()).hexdigest())\n"
            f"print(o.get_dataset({RAW_CSV!r}).permId)"
        )
    finally:
        kernel.shutdown()
    assert error is None, error
    assert output.split() == [hashlib.sha256(token.encode()).hexdigest(), RAW_CSV]
