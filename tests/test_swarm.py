"""The ELN journey on a real three-node Docker Swarm: the host's engine as manager, two worker
engines in network namespaces of their own (tests/support/swarm_cluster.py), the stack deployed with
`make swarm-up` (deploy/swarm/stack.yaml + stack.double.yaml: the openBIS double in place of
openBIS), user servers only on the workers (JUPYTERHUB_SWARM_CONSTRAINTS=node.role == worker).

The tests share one swarm and run in file order, as a day on the swarm would go: two users
open ELN notebooks and land on different workers, pyBIS fetches and saves back from a user's
kernel, a broken home volume fails a start at once with Swarm's reason, one worker fails
while the other user keeps working, and the affected user's server comes back on that worker
with their files when it returns. Needs root (namespaces, a second dockerd).
"""

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from openbis_double import seed
from tests.support.attacks import ATTACKS, PRELUDE
from tests.support.compose_stack import ELN_ORIGIN
from tests.support.eln import (
    RAW_BIN,
    RAW_CSV,
    eln_new_notebook,
    eln_post,
    run_eln_notebook,
    seed_notebook,
)
from tests.support.jupyter_api import KernelSession
from tests.support.swarm_cluster import SwarmCluster, run
from tests.support.swarm_stack import SwarmStack

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, dockerd"),
]

FOLDER, NAME = "growth analyses", "run 1"
# an openBIS user id near openBIS's 50-character limit: escaped, 100+ characters
LONG_ID = "Marie-Louise.Mueller-Luedenscheidt@biol.ethz.ch"
USERS = ["JDoe", LONG_ID]
# the hub's start_timeout is 180 s: a failure must be reported well before
FAST = 45


@pytest.fixture(scope="module")
def swarm(hub_image, singleuser_image, openbis_double_image, tmp_path_factory):
    cluster = SwarmCluster(workers=2)
    # tags of this run: other test runs on this engine may rebuild the :latest ones meanwhile
    hub, singleuser, double = (
        f"{image.rsplit(':', 1)[0]}:obswarm-{cluster.id}"
        for image in (hub_image, singleuser_image, openbis_double_image)
    )
    for image, tag in [
        (hub_image, hub),
        (singleuser_image, singleuser),
        (openbis_double_image, double),
    ]:
        run("docker", "tag", image, tag)
    stack = None
    try:
        cluster.start()
        # the workers get the single-user image while the stack comes up on the manager
        with ThreadPoolExecutor(1) as pool:
            loading = pool.submit(cluster.load_images, [singleuser])
            stack = SwarmStack(tmp_path_factory.mktemp("swarm"), cluster, hub, singleuser, double)
            stack.up()
            loading.result(timeout=900)
        stack.control.add_user(LONG_ID, f"{LONG_ID}-password")
        stack.control.add_user("bob", "bob-password")
        yield stack
    finally:
        if stack is not None:
            stack.remove()
        cluster.remove()
        run("docker", "rmi", hub, singleuser, double, check=False)


@pytest.fixture(scope="module")
def admin_token(swarm):
    return swarm.api_token("admin")


@pytest.fixture(scope="module")
def journeys(swarm):
    """The ELN's "New Jupyter Notebook" for both users at once, link followed: {user: written}."""

    def journey(user):
        token = swarm.login(user)
        written, link = eln_new_notebook(
            swarm, token, user, FOLDER, NAME, seed_notebook, ELN_ORIGIN
        )
        page = swarm.session().get(link, timeout=330)
        page.raise_for_status()
        return written, page, token

    with ThreadPoolExecutor(len(USERS)) as pool:
        return dict(zip(USERS, pool.map(journey, USERS), strict=True))


def worker_of(swarm, node_id):
    return next(w for w in swarm.cluster.workers if w.node_id == node_id)


def eln_start(swarm, user):
    """The ELN's test POST, which starts the user's server: (status, answer, seconds)."""
    start = time.monotonic()
    status, _, answer = eln_post(
        swarm, swarm.login(user), FOLDER, "x.ipynb", "True", b"TEST", ELN_ORIGIN
    )
    return status, answer, time.monotonic() - start


def stop_server(swarm, admin_token, user, timeout=120):
    """What File > Hub Control Panel > Stop My Server does, waited for."""
    name = quote(user, safe="")
    answer = swarm.api(f"/users/{name}/server", admin_token, method="DELETE")
    assert answer.status_code in (202, 204), answer.text
    deadline = time.monotonic() + timeout
    while swarm.api(f"/users/{name}", admin_token).json()["servers"]:
        assert time.monotonic() < deadline, f"{user}'s server did not stop"
        time.sleep(0.5)


def contents(swarm, token, user, path):
    answer = swarm.session().get(
        f"{swarm.url}/user/{quote(user, safe='@')}/api/contents/{quote(path)}",
        params={"type": "file", "format": "text"},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()["content"]


# --- 1. the ELN journey: users spread over the workers ------------------------------------------
def test_eln_journey_lands_users_on_different_workers(swarm, journeys):
    for user, (written, page, token) in journeys.items():
        assert written == {"fileName": f"{NAME}.ipynb", "path": f"{FOLDER}/{NAME}.ipynb"}
        # signed in with the token, the notebook page itself served, the token not in sight
        assert page.url == (
            f"{swarm.url}/user/{quote(user, safe='@')}/notebooks/growth%20analyses/run%201.ipynb"
        )
        assert token not in page.url and token not in page.text
        # a Swarm service with a name Swarm accepts (the long id escapes to 100+ characters)
        name = swarm.service_name(user)
        assert name and len(name) <= 63
    nodes = {swarm.user_node(user) for user in USERS}
    assert nodes == {w.node_id for w in swarm.cluster.workers}  # one user on each worker


# --- 2. pyBIS in a user's kernel on a worker: fetch the datasets, save the analysis back -------
def test_eln_notebook_runs_on_a_worker_and_saves_back(swarm, admin_token, journeys):
    before = len(swarm.control.created_datasets())
    written = journeys["JDoe"][0]
    notebook = json.loads(contents(swarm, admin_token, "JDoe", written["path"]))
    kernel = KernelSession(
        f"{swarm.url}/user/JDoe/", admin_token, ca_file=str(swarm.ca_file), path=FOLDER
    )
    try:
        assert "DataSet successfully created" in run_eln_notebook(kernel, notebook)
        # the downloaded dataset, read in the kernel on the worker
        output, error = kernel.execute(
            "import hashlib, pathlib\n"
            f"print(hashlib.sha256(pathlib.Path('{RAW_CSV}/original/measurements.csv')"
            ".read_bytes()).hexdigest())"
        )
        assert error is None and output.strip() == hashlib.sha256(seed.CSV_BYTES).hexdigest()
    finally:
        kernel.shutdown()
    created = swarm.control.created_datasets()[before:]
    assert [(d["type"], d["registrator"], d["parents"]) for d in created] == [
        ("ANALYSIS_NOTEBOOK", "JDoe", [RAW_CSV, RAW_BIN])
    ]


# --- 2b. the hardening of hub/docker.py holds on a worker too ----------------------------------
def test_user_code_on_a_worker_is_as_confined_as_on_compose(swarm, admin_token, journeys):
    """The attack suite's cells for privileges and the image (tests/support/attacks.py), in JDoe's
    kernel on a worker, /tmp's size, and the process limit on the worker's container."""
    cells = {attack.id: attack.code for attack in ATTACKS}
    kernel = KernelSession(
        f"{swarm.url}/user/JDoe/", admin_token, ca_file=str(swarm.ca_file), path=FOLDER
    )
    try:
        for code in (PRELUDE, cells["privilege-escalation"], cells["write-the-image"]):
            output, error = kernel.execute(code, timeout=120)
            assert error is None, (error["ename"], error["evalue"], output)
        output, error = kernel.execute(
            "print(os.statvfs('/tmp').f_blocks * os.statvfs('/tmp').f_frsize)"
        )
        assert error is None and output.strip() == str(1024**3)
    finally:
        kernel.shutdown()
    # the process limit, as the worker's engine applied it to the container
    worker = worker_of(swarm, swarm.user_node("JDoe"))
    label = f"com.docker.swarm.service.name={swarm.service_name('JDoe')}"
    container = worker.docker("ps", "-q", "--filter", f"label={label}").strip()
    assert worker.docker("inspect", "-f", "{{.HostConfig.PidsLimit}}", container).strip() == "512"


# --- 3. a task Swarm rejects fails the start at once, with Swarm's reason -----------------------
def test_a_broken_home_volume_fails_the_start_at_once(swarm, admin_token):
    status, answer, _ = eln_start(swarm, "bob")
    assert status == 200, answer
    worker = worker_of(swarm, swarm.user_node("bob"))
    stop_server(swarm, admin_token, "bob")
    # bob's home on his node, replaced by a volume whose mount cannot work
    volume = swarm.user_volume("bob")
    deadline = time.monotonic() + 60
    # the node removes the stopped server's container shortly after the service
    while worker.docker("volume", "rm", volume, check=False) != f"{volume}\n":
        assert time.monotonic() < deadline, f"{volume} stays in use"
        time.sleep(0.5)
    worker.docker(
        "volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind",
        "--opt", "device=/nonexistent-home", volume,
    )  # fmt: skip

    status, answer, seconds = eln_start(swarm, "bob")
    assert status == 503
    assert "did not start on the swarm" in answer["reason"]
    assert "nonexistent-home" in answer["reason"]  # Swarm's own reason
    assert seconds < FAST, f"reported after {seconds:.0f} s"
    assert swarm.service_name("bob") is None  # nothing left behind


# --- 4. a worker fails: the others keep working; the home comes back with its node ---------------
def test_worker_down_others_keep_working_and_the_home_returns(swarm, admin_token, journeys):
    affected, other = LONG_ID, "JDoe"
    worker = worker_of(swarm, swarm.user_node(affected))
    other_node = swarm.user_node(other)
    notebook = contents(swarm, admin_token, affected, journeys[affected][0]["path"])

    swarm.cluster.stop_worker(worker)
    swarm.cluster.wait_for_node(worker, "down", timeout=90)

    # JDoe, on the other worker, goes on: a kernel, a new ELN notebook
    kernel = KernelSession(f"{swarm.url}/user/JDoe/", admin_token, ca_file=str(swarm.ca_file))
    try:
        output, error = kernel.execute(
            "from pybis import Openbis\nprint(Openbis().is_session_active())"
        )
        assert error is None and output.strip() == "True"
    finally:
        kernel.shutdown()
    written, _ = eln_new_notebook(
        swarm, swarm.login(other), other, FOLDER, "run 2", seed_notebook, ELN_ORIGIN
    )
    assert written["fileName"] == "run 2.ipynb"
    assert swarm.user_node(other) == other_node

    # the affected user: their server is gone with the node; a start says why, at once
    stop_server(swarm, admin_token, affected)
    status, answer, seconds = eln_start(swarm, affected)
    assert status == 503
    assert f"on the swarm node {worker.name}, which is down" in answer["reason"]
    assert seconds < FAST

    # the node returns: the next start works, on that node, with the user's files
    swarm.cluster.start_worker(worker)
    token = swarm.login(affected)
    try:
        written, link = eln_new_notebook(
            swarm, token, affected, FOLDER, "run 3", seed_notebook, ELN_ORIGIN
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\nhub: {swarm.logs()[-6000:]}") from e
    assert swarm.session().get(link, timeout=330).ok
    assert swarm.user_node(affected) == worker.node_id
    assert contents(swarm, admin_token, affected, journeys[affected][0]["path"]) == notebook
