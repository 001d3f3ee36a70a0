"""User servers as Slurm jobs on a real two-node cluster (tests/support/slurm_cluster.py): munge,
slurmctld and one slurmd on this host, a second slurmd in a network namespace; the hub
(hub/jupyterhub_config.py unchanged, JUPYTERHUB_SPAWNER=slurm) runs as an unprivileged user
of its own with deploy/slurm's sudoers rule; the single-user image, converted with
ch-convert, runs rootless in the job with ch-run; the openBIS double listens on the host's
cluster address.

The tests share one cluster and hub and run in file order, as a day on the cluster goes: the
ELN journey starts a job on node2, the notebook fetches and saves back with pyBIS, a new
token reaches the running job, sbatch and squeue work from the notebook and a Dask computation
runs on two worker jobs of the user's account (its dashboard through the user's server), an
account-less user gets a page, a job held by a full partition shows Slurm's reason, scancel
is noticed and the next link starts a new job, and nothing is left running at the end. Needs
root (namespaces, daemons, users).
"""

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from openbis_double import seed
from tests.support.double import start_openbis_double
from tests.support.eln import (
    RAW_BIN,
    RAW_CSV,
    eln_new_notebook,
    eln_post,
    run_eln_notebook,
    seed_notebook,
)
from tests.support.jupyter_api import KernelSession
from tests.support.slurm_cluster import (
    HOST_IP,
    NODE2_IP,
    SlurmCluster,
    charliecloud_image,
    start_slurm_hub,
)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, daemons, users"),
    pytest.mark.skipif(
        not (shutil.which("slurmctld") and shutil.which("ch-run")),
        reason="needs Slurm and Charliecloud (tests/run.sh installs them)",
    ),
]

FOLDER, NAME = "beamtime", "run 1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = SlurmCluster()
    try:
        yield cluster.start()
    finally:
        # the daemons' and the hub's logs, kept where pytest keeps test files
        logs = tmp_path_factory.mktemp("slurm-logs")
        for log in [
            *cluster.root.glob("*.out"),
            *cluster.root.glob("log/*"),
            *cluster.root.glob("hub/hub.log"),
            *cluster.homes.glob("*/.jupyterhub-*.log"),
        ]:
            shutil.copy(log, logs / log.name)  # fmt: skip
        cluster.remove()


@pytest.fixture(scope="module")
def image_dir(singleuser_image):
    return charliecloud_image(singleuser_image)


@pytest.fixture(scope="module")
def double(cluster):
    """The openBIS double on the host's cluster address: jobs on node2 reach it there."""
    directory = cluster.root / "double"
    directory.mkdir(mode=0o755)
    double = start_openbis_double(directory, host=HOST_IP)
    yield double
    double.stop()


@pytest.fixture(scope="module")
def accounts(cluster, double):
    """openBIS user -> cluster account: JDoe through the account map, one user with an
    account of the same name, one user with none."""
    same = f"obsl{cluster.id}al"
    double.control.add_user(same, f"{same}-password")
    visitor = f"visitor{cluster.id}"
    double.control.add_user(visitor, f"{visitor}-password")
    accounts = {"JDoe": f"obsl{cluster.id}jd", same: same}
    for account in accounts.values():
        cluster.add_user(account)
    account_map = cluster.root / "etc" / "accounts"
    account_map.write_text(f"# openBIS user id   cluster account\nJDoe {accounts['JDoe']}\n")
    return {**accounts, visitor: None}


@pytest.fixture(scope="module")
def hub(cluster, double, image_dir, accounts):
    hub = start_slurm_hub(
        cluster,
        double,
        image_dir,
        JUPYTERHUB_SLURM_ACCOUNT_MAP=str(cluster.root / "etc" / "accounts"),
        JUPYTERHUB_SLURM_PARTITIONS="debug,small",
        JUPYTERHUB_SLURM_POLL_INTERVAL="2",
        JUPYTERHUB_MEM_LIMIT="1G",
    )
    hub.double = double
    try:
        yield hub
    finally:
        hub.stop_all_servers()
        wait_until(lambda: not cluster.jobs(), "every job ended", timeout=60)
        hub.stop()


def wait_until(condition, what, timeout=120, interval=0.5):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not {what} after {timeout} s"
        time.sleep(interval)
    return result


def login(hub, user) -> str:
    return hub.double.control.login(user, hub.double.users.get(user) or f"{user}-password")


def server_model(hub, user) -> dict:
    return hub.api(f"/users/{quote(user, safe='')}").json().get("servers", {}).get("", {})


@pytest.fixture(scope="module")
def journey(hub, cluster, accounts):
    """JDoe's ELN "New Jupyter Notebook", link followed: (written, page, token)."""
    token = login(hub, "JDoe")
    written, link = eln_new_notebook(hub, token, "JDoe", FOLDER, NAME, seed_notebook)
    session = requests.Session()
    page = session.get(link, timeout=300)
    return written, page, token


# --- 1. the ELN journey starts a job on node2, as JDoe's cluster account -----------------------
def test_eln_journey_starts_a_job_on_node2_as_the_users_account(hub, cluster, accounts, journey):
    written, page, token = journey
    assert written == {"fileName": f"{NAME}.ipynb", "path": f"{FOLDER}/{NAME}.ipynb"}
    assert page.status_code == 200
    assert page.url == f"{hub.url}/user/JDoe/notebooks/beamtime/run%201.ipynb"
    assert token not in page.url and token not in page.text
    [job] = cluster.jobs()
    assert (job["state"], job["node"], job["user"]) == ("RUNNING", "node2", accounts["JDoe"])
    # the hub reaches the server across the network, at node2's address
    assert f"http://{NODE2_IP}:" in hub.log_text()
    # the notebook the ELN wrote is in the account's cluster home, the account's alone
    home = cluster.homes / accounts["JDoe"]
    path = home / FOLDER / written["fileName"]
    assert path.stat().st_uid == os.stat(home).st_uid
    assert path.stat().st_mode & 0o077 == 0


# --- 2. pyBIS in the job: fetch the datasets, save the analysis back ---------------------------
def test_the_notebook_fetches_and_saves_back_from_the_job(hub, journey):
    double = hub.double
    before = len(double.control.created_datasets())
    written = journey[0]
    notebook = json.loads(
        requests.get(
            f"{hub.url}/user/JDoe/api/contents/{quote(written['path'])}",
            params={"type": "file", "format": "text"},
            headers={"Authorization": f"token {hub.api_token}"},
            timeout=60,
        ).json()["content"]
    )
    kernel = KernelSession(f"{hub.url}/user/JDoe/", hub.api_token, path=FOLDER)
    try:
        assert "DataSet successfully created" in run_eln_notebook(kernel, notebook)
        output, error = kernel.execute(
            "import hashlib, pathlib, socket\n"
            f"print(hashlib.sha256(pathlib.Path('{RAW_CSV}/original/measurements.csv')"
            ".read_bytes()).hexdigest(), socket.gethostbyname(socket.gethostname()) != '',"
            " pathlib.Path.home())"
        )
        assert error is None, error
        digest, _, home = output.split()
        assert digest == hashlib.sha256(seed.CSV_BYTES).hexdigest()
        assert home == f"/home/{hub_account(hub, 'JDoe')}"
    finally:
        kernel.shutdown()
    created = double.control.created_datasets()[before:]
    assert [(d["type"], d["registrator"], d["parents"]) for d in created] == [
        ("ANALYSIS_NOTEBOOK", "JDoe", [RAW_CSV, RAW_BIN])
    ]


def hub_account(hub, user):
    text = Path(hub.env["JUPYTERHUB_SLURM_ACCOUNT_MAP"]).read_text()
    return dict(line.split() for line in text.splitlines() if not line.startswith("#"))[user]


# --- 2b. user code holds its server's API token: batchspawner's API takes nothing from it ---------
def test_user_code_cannot_set_the_hubs_spawner_through_batchspawners_api(hub, journey):
    kernel = KernelSession(f"{hub.url}/user/JDoe/", hub.api_token, path=FOLDER)
    try:
        output, error = kernel.execute(
            "import os, requests\n"
            "url = os.environ['JUPYTERHUB_API_URL'] + '/batchspawner'\n"
            "auth = {'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}\n"
            "for body in ({'exec_prefix': 'touch /tmp/owned;'}, {'port': 1234}):\n"
            "    print(requests.post(url, json=body, headers=auth, timeout=30).status_code)"
        )
    finally:
        kernel.shutdown()
    # upstream's handler would have set the hub's command prefix and the server's port
    assert error is None and output.split() == ["400", "403"]
    assert server_model(hub, "JDoe")["ready"]


# --- 3. the token: a new sign-in reaches the job; never in the job's script, env or Slurm ------
def test_a_new_token_reaches_the_job_and_no_token_is_in_slurm(hub, cluster, accounts, journey):
    token = login(hub, "JDoe")
    status, _, answer = eln_post(hub, token, FOLDER, "x.ipynb", "True", b"TEST")
    assert status == 200, answer
    saved = cluster.homes / accounts["JDoe"] / ".pybis" / f"{HOST_IP}.token"
    assert saved.read_text() == token
    assert saved.stat().st_mode & 0o077 == 0
    [job] = cluster.jobs()
    seen = {
        "squeue": cluster.slurm("squeue", "-a", "-o", "%all"),
        "scontrol show job": cluster.slurm("scontrol", "show", "job", "-dd", job["id"]),
        "the job script": cluster.slurm(
            "scontrol", "write", "batch_script", job["id"], "-", user=accounts["JDoe"]
        ),
    }
    # every process of the job (ch-run, the server, its kernels), as root sees them
    for pid, command in cluster.processes_of(accounts["JDoe"]).items():
        seen[f"environment of {command[:60]}"] = (
            Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        )
        seen[f"command line of {pid}"] = command
    for log in (cluster.homes / accounts["JDoe"]).glob(".jupyterhub-slurm-*.log"):
        seen[log.name] = log.read_text(errors="replace")
        assert log.stat().st_mode & 0o077 == 0, f"{log.name} is readable by others"
    # the server's own environment was among them
    assert any(
        w.startswith("environment of") and "JUPYTERHUB_API_URL" in t for w, t in seen.items()
    )
    for old_or_new in (journey[2], token):
        for where, text in seen.items():
            assert old_or_new not in text, f"an openBIS token in {where}"


# --- 3b. sbatch, squeue and scancel from the notebook, as the account --------------------------
def test_sbatch_and_squeue_work_from_the_notebook(hub, cluster, accounts, journey):
    account = accounts["JDoe"]
    home = cluster.homes / account
    kernel = KernelSession(f"{hub.url}/user/JDoe/", hub.api_token, path=FOLDER)
    try:
        # ch-run shows the home at /home/ACCOUNT; the node has it where the cluster keeps it
        output, error = kernel.execute(
            "import subprocess\n"
            "def slurm(*args):\n"
            "    done = subprocess.run(args, capture_output=True, text=True, timeout=30)\n"
            "    assert done.returncode == 0, done.stderr\n"
            "    return done.stdout.strip()\n"
            f"job = slurm('sbatch', '--parsable', '-p', 'dask', '--chdir', '{home}',"
            " '--wrap', 'echo from $SLURM_JOB_ID on $(hostname); sleep 300')\n"
            "print(job, slurm('squeue', '-h', '-j', job, '-o', '%u'))"
        )
        assert error is None, error
        job, user = output.split()
        assert user == account
        assert [j["user"] for j in cluster.jobs() if j["id"] == job] == [account]
        log = home / f"slurm-{job}.out"
        wait_until(lambda: log.exists() and log.read_text().strip(), "the job's output")
        assert log.read_text().split()[:3] == ["from", job, "on"]
        output, error = kernel.execute(f"print(slurm('scancel', '{job}') or 'cancelled')")
        assert error is None and output.strip() == "cancelled", error
    finally:
        kernel.shutdown()
    wait_until(lambda: all(j["id"] != job for j in cluster.jobs()), "the job cancelled")


# --- 3c. Dask's SLURMCluster: two worker jobs of the account compute; the dashboard opens --------
def test_a_dask_computation_runs_on_two_worker_jobs(hub, cluster, accounts, journey):
    account = accounts["JDoe"]
    [server_job] = cluster.jobs(account)
    kernel = KernelSession(f"{hub.url}/user/JDoe/", hub.api_token, path=FOLDER)
    try:
        # the notebook's code as a user writes it: no paths, no addresses, Dask's defaults
        output, error = kernel.execute(
            "import os\n"
            "from dask.distributed import Client\n"
            "from dask_jobqueue import SLURMCluster\n"
            "cluster = SLURMCluster(queue='dask', cores=1, memory='1GB')\n"
            "cluster.scale(jobs=2)\n"
            "client = Client(cluster)\n"
            "client.wait_for_workers(2, timeout=240)\n"
            "total = client.submit(sum, range(1_000_000)).result()\n"
            "jobs = client.run(lambda: os.environ['SLURM_JOB_ID'])\n"
            "print(total, client.dashboard_link, *sorted(jobs.values()))",
            timeout=300,
        )
        assert error is None, error
        total, link, *worker_jobs = output.split()
        assert int(total) == sum(range(1_000_000))
        # each worker is a job of its own, the account's, beside the server's
        workers = [j for j in cluster.jobs(account) if j["id"] != server_job["id"]]
        assert sorted(j["id"] for j in workers) == worker_jobs
        assert {(j["state"], j["user"]) for j in workers} == {("RUNNING", account)}
        # the dashboard, through the user's server
        assert link.startswith("/user/JDoe/proxy/") and link.endswith("/status")
        dashboard = requests.get(
            f"{hub.url}{link}", headers={"Authorization": f"token {hub.api_token}"}, timeout=60
        )
        assert dashboard.status_code == 200 and "Dask" in dashboard.text
        # no openBIS token in the workers' jobs (scripts, Slurm's records) or processes
        tokens = [journey[2], (cluster.homes / account / ".pybis" / f"{HOST_IP}.token").read_text()]
        seen = {"squeue": cluster.slurm("squeue", "-a", "-o", "%all")}
        for job in worker_jobs:
            seen[f"scontrol show job {job}"] = cluster.slurm("scontrol", "show", "job", "-dd", job)
            seen[f"script of {job}"] = cluster.slurm(
                "scontrol", "write", "batch_script", job, "-", user=account
            )
        worker_pids = dask_workers(cluster, account)
        assert len(worker_pids) == 2, worker_pids
        for pid in worker_pids:
            seen[f"environment of worker {pid}"] = (
                Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            )
        for token in tokens:
            for where, text in seen.items():
                assert token not in text, f"an openBIS token in {where}"
        output, error = kernel.execute("client.close(); cluster.close(); print('closed')")
        assert error is None and output.strip() == "closed", error
    finally:
        kernel.shutdown()
    # nothing left: the server's job alone, no worker process on either node
    wait_until(
        lambda: [j["id"] for j in cluster.jobs(account)] == [server_job["id"]],
        "the worker jobs ended",
        timeout=60,
    )
    wait_until(
        lambda: not dask_workers(cluster, account),
        "no worker process left",
        timeout=30,
    )


def dask_workers(cluster, account) -> list[int]:
    """PIDs of the account's Dask worker processes, on either node."""
    processes = cluster.processes_of(account).items()
    return [pid for pid, command in processes if "distributed.cli.dask_worker" in command]


# --- 4. a user without a cluster account gets a page, and no job --------------------------------
def test_a_user_without_an_account_gets_a_page_and_no_job(hub, cluster, accounts):
    visitor = next(user for user, account in accounts.items() if account is None)
    jobs = cluster.jobs()
    token = login(hub, visitor)
    status, _, answer = eln_post(hub, token, FOLDER, "x.ipynb", "True", b"TEST")
    assert status >= 400
    assert "no account on this cluster" in json.dumps(answer)
    session = requests.Session()
    # the ELN's link: sign-in, then the start fails at once with a page that says why
    page = session.get(f"{hub.url}/hub/login?token={token}&next=/user/{visitor}/lab", timeout=60)
    assert page.status_code == 403, (page.url, page.text[-2000:])
    assert "has no account on this cluster" in page.text
    assert "Ask the cluster" in page.text
    assert cluster.jobs() == jobs


# --- 5. a full partition: the progress page shows Slurm's reason ------------------------------
def test_a_job_held_by_a_full_partition_shows_why(hub, cluster, accounts):
    user = next(u for u, a in accounts.items() if a == u)
    # the partition "small" runs one single-CPU job at a time; someone else's fills it
    blocker = cluster.slurm(
        "sbatch", "--parsable", "-p", "small", "-c", "1", "--mem", "100M", "--wrap", "sleep 600",
        user=accounts["JDoe"],
    ).strip()  # fmt: skip
    wait_until(lambda: any(j["id"] == blocker and j["state"] == "RUNNING" for j in cluster.jobs()),
               "the blocking job running")  # fmt: skip
    name = quote(user, safe="")
    login(hub, user)  # the user exists once signed in through the hub
    hub.api(f"/users/{name}", method="POST")
    answer = hub.api(f"/users/{name}/server", method="POST", json={"partition": "small", "cpus": 1})
    assert answer.status_code == 202, answer.text
    with requests.get(
        f"{hub.url}/hub/api/users/{name}/server/progress",
        headers={"Authorization": f"token {hub.api_token}"},
        stream=True,
        timeout=60,
    ) as events:
        for line in events.iter_lines(decode_unicode=True):
            if line.startswith("data:") and "pending" in (event := json.loads(line[5:]))["message"]:
                break
    assert "(Resources)" in event["message"] or "(Priority)" in event["message"], event
    assert "number 1 in the queue" in event["message"]
    [held] = [j for j in cluster.jobs() if j["user"] == user]
    assert held["state"] == "PENDING"
    # the partition frees up: the server starts
    cluster.slurm("scancel", blocker)
    wait_until(lambda: server_model(hub, user).get("ready"), f"{user}'s server ready")
    assert [j["node"] for j in cluster.jobs() if j["user"] == user] == ["node1"]
    stop = hub.api(f"/users/{name}/server", method="DELETE")
    assert stop.status_code in (202, 204)
    wait_until(lambda: not server_model(hub, user), f"{user}'s server stopped")


# --- 6. scancel is noticed; the next ELN link starts a new job ---------------------------------
def test_scancel_is_noticed_and_the_next_link_starts_a_new_job(hub, cluster, accounts, journey):
    [job] = [j for j in cluster.jobs() if j["user"] == accounts["JDoe"]]
    cluster.slurm("scancel", job["id"])
    wait_until(lambda: not server_model(hub, "JDoe"), "the hub noticed", timeout=60)
    # nothing of the server outlives its job: no process of the account on either node
    wait_until(lambda: not cluster.processes_of(accounts["JDoe"]), "no process left", timeout=30)
    token = login(hub, "JDoe")
    status, _, answer = eln_post(hub, token, FOLDER, "y.ipynb", "True", b"TEST")
    assert status == 200, answer
    [new] = [j for j in cluster.jobs() if j["user"] == accounts["JDoe"]]
    assert new["id"] != job["id"] and new["state"] == "RUNNING"
    # the files from before are there: the home is the account's, not the job's
    assert (cluster.homes / accounts["JDoe"] / FOLDER / f"{NAME}.ipynb").exists()


# --- 7. stop: no job and no process left ----------------------------------------------------------
def test_stop_leaves_no_job_and_no_process(hub, cluster, accounts):
    hub.stop_all_servers()
    wait_until(lambda: not cluster.jobs(), "every job ended", timeout=60)
    for account in filter(None, accounts.values()):
        wait_until(lambda a=account: not cluster.processes_of(a), f"no process of {account}")
