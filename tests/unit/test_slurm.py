"""hub/slurm.py and the launcher's port report, without a cluster (tests/test_slurm.py has one).

The tripwires: what we take from batchspawner (pinned in pyproject.toml) is checked against
batchspawner itself, so an upgrade that moves it fails here first.
"""

import ast
import http.server
import json
import shlex
import subprocess
import sys
import threading
from importlib.metadata import version
from pathlib import Path

import pytest
from jupyterhub.apihandlers import default_handlers
from jupyterhub.app import JupyterHub
from jupyterhub.objects import Server
from openbis_jupyterhub.hub import slurm
from tornado import web
from traitlets.config import PyFileConfigLoader

from tests.support.spawner_manifests import User

REPO = Path(__file__).resolve().parents[2]


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append(
            {
                "path": self.path,
                "authorization": self.headers["Authorization"],
                "json": json.loads(body),
            }
        )
        self.send_response(201)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub():
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api", _Recorder.requests
    server.shutdown()


def batch_job_environment(api_url):
    return {
        "PATH": "/usr/bin:/bin",
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_API_TOKEN": "server-token",
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/user/a/",  # batchspawner: port 0
    }


def test_the_launcher_reports_its_port_as_batchspawners_wrapper_does(fake_hub, tmp_path):
    """Our launcher stands in for ``batchspawner-singleuser`` (hub/slurm.py): same request to
    the same API, same rewritten JUPYTERHUB_SERVICE_URL."""
    api_url, requests = fake_hub
    env = batch_job_environment(api_url)
    show = tmp_path / "show-url"
    show.write_text("import os; print(os.environ['JUPYTERHUB_SERVICE_URL'])\n")
    show.chmod(0o755)  # the wrapper looks its command up with shutil.which
    upstream = subprocess.run(
        [sys.executable, "-c", "import sys; from batchspawner.singleuser import main; "
         f"sys.argv = ['batchspawner-singleuser', {str(show)!r}]; main()"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert upstream.returncode == 0, upstream.stderr
    upstream = upstream.stdout.strip()
    ours = subprocess.run(
        [sys.executable, "-c", "import os; from openbis_jupyterhub.singleuser.launch import "
         "report_port; report_port(); print(os.environ['JUPYTERHUB_SERVICE_URL'])"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    theirs, mine = requests
    assert theirs["path"] == mine["path"] == "/hub/api/batchspawner"
    assert theirs["authorization"] == mine["authorization"] == "token server-token"
    assert set(theirs["json"]) == set(mine["json"]) == {"port"}
    assert upstream == f"http://0.0.0.0:{theirs['json']['port']}/user/a/"
    assert ours == f"http://0.0.0.0:{mine['json']['port']}/user/a/"


def test_a_server_with_a_port_reports_nothing(fake_hub):
    from openbis_jupyterhub.singleuser.launch import report_port

    api_url, requests = fake_hub
    env = {**batch_job_environment(api_url), "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/"}
    assert report_port(env) is None and requests == []


def test_batchspawner_is_the_pinned_release_and_its_api_handler_is_replaced():
    assert version("batchspawner") == "1.3.0"
    from batchspawner.api import BatchSpawnerAPIHandler

    [(path, handler)] = [(p, h) for p, h in default_handlers if p == "/api/batchspawner"]
    assert handler is slurm.PortReportHandler
    assert issubclass(handler, BatchSpawnerAPIHandler)


# --- the job ---------------------------------------------------------------------------------
def spawner_for(monkeypatch, tmp_path, user="JDoe", account_map="", **env):
    """The spawner our hub (hub/jupyterhub_config.py) would make for ``user``."""
    if account_map:
        (tmp_path / "accounts").write_text(account_map)
        env["JUPYTERHUB_SLURM_ACCOUNT_MAP"] = str(tmp_path / "accounts")
    env = {
        "OPENBIS_URL": "https://openbis.example.org",
        "JUPYTERHUB_SPAWNER": "slurm",
        "JUPYTERHUB_CONFIG_D": str(tmp_path),
        "JUPYTERHUB_STATE_DIR": str(tmp_path),
        "JUPYTERHUB_SLURM_IMAGE": "/cluster/images/singleuser",
        "JUPYTERHUB_SLURM_PARTITIONS": "interactive,gpu",
        **env,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = PyFileConfigLoader("jupyterhub_config.py", str(REPO / "hub")).load_config()
    assert config.JupyterHub.spawner_class == "openbis-slurm"
    app = JupyterHub(config=config)
    app.init_hub()
    spawner = slurm.OpenBISSlurmSpawner(config=config, user=User(user), hub=app.hub)
    spawner.server = Server(base_url=f"/user/{user}/")
    spawner.api_token = "server-token"  # noqa: S105 (JupyterHub sets it before each start)
    return spawner


def test_settings_choose_the_slurm_spawner_and_its_limits(monkeypatch, tmp_path):
    spawner = spawner_for(monkeypatch, tmp_path, JUPYTERHUB_SLURM_MAX_CPUS="8")
    assert spawner.image_dir == "/cluster/images/singleuser"
    assert spawner.partitions == ["interactive", "gpu"]
    assert spawner.max_cpus == 8 and spawner.max_memory_gb == 32
    assert spawner.poll_interval == 10


def test_the_account_map_names_the_cluster_account(monkeypatch, tmp_path):
    spawner = spawner_for(monkeypatch, tmp_path, account_map="# comment\nJDoe  root\n")
    assert spawner.account == spawner.req_username == "root"
    assert spawner.req_homedir == "/root"
    other = spawner_for(monkeypatch, tmp_path, user="nobody")
    assert other.account == "nobody"


def test_a_user_without_an_account_gets_a_message_and_no_job(monkeypatch, tmp_path):
    spawner = spawner_for(monkeypatch, tmp_path, user="no-such-account-here")
    with pytest.raises(web.HTTPError) as failure:
        spawner.account_entry()
    assert "has no account on this cluster" in failure.value.jupyterhub_message


def test_the_job_script_runs_the_image_with_charliecloud_and_defaults(monkeypatch, tmp_path):
    import asyncio

    spawner = spawner_for(monkeypatch, tmp_path, account_map="JDoe root\n")
    subvars = spawner.get_req_subvars()
    subvars["cmd"] = spawner.cmd_formatted_for_batch()
    script = asyncio.run(spawner._get_batch_script(**subvars))
    assert "#SBATCH --partition=interactive\n" in script
    assert "#SBATCH --time=8:00:00\n" in script
    assert "#SBATCH --mem=4096M\n" in script
    assert "#SBATCH --cpus-per-task=1\n" in script
    assert "#SBATCH --output=/root/.jupyterhub-slurm-%j.log" in script
    assert "--gres" not in script
    assert (
        "exec srun --export=ALL ch-run --home --no-passwd --bind=/etc/passwd --bind=/etc/group "
        "--bind=/etc/slurm --bind=/run/munge --set-env --set-env=HOME=/home/root"
    ) in script
    assert " /cluster/images/singleuser -- start-singleuser.sh" in script
    assert "server-token" not in script
    assert spawner.get_env()["SLURM_UMASK"] == "0077"


def test_the_form_is_skipped_on_links_and_checks_the_limits(monkeypatch, tmp_path):
    spawner = spawner_for(monkeypatch, tmp_path, JUPYTERHUB_SLURM_MAX_GPUS="2")
    spawner.handler = type("H", (), {"get_argument": lambda self, name, default: "/user/x/lab"})()
    assert spawner.render_options_form(spawner) == ""
    spawner.handler = type("H", (), {"get_argument": lambda self, name, default: default})()
    form = spawner.render_options_form(spawner)
    assert 'name="partition"' in form and 'name="gpus"' in form
    options = spawner.options_from_form(
        {"partition": ["gpu"], "cpus": ["2"], "memory_gb": ["8"], "hours": ["1.5"], "gpus": ["1"]}
    )
    assert spawner.checked_options(options) == {
        "partition": "gpu", "nprocs": "2", "memory": "8192M", "runtime": "1:30:00",
        "gres": "gpu:1",
    }  # fmt: skip
    for bad in ({"cpus": ["5"]}, {"partition": ["debug"]}, {"hours": ["25"]}, {"gpus": ["x"]}):
        with pytest.raises(web.HTTPError):
            spawner.options_from_form(bad)
    # the REST API passes user_options unchecked: what would reach the job script is refused
    with pytest.raises(web.HTTPError, match="unknown options: options"):
        spawner.checked_options({"options": "--partition=gpu --gres=gpu:8"})


# --- the cluster from the notebook -------------------------------------------------------------
@pytest.mark.parametrize(
    ("binds", "expected"),
    [
        (None, ["/etc/slurm", "/run/munge"]),
        ("none", []),
        ("/cluster/slurm:/etc/slurm, /var/run/munge:/run/munge", ["/cluster/slurm:/etc/slurm",
                                                                  "/var/run/munge:/run/munge"]),
    ],
)  # fmt: skip
def test_the_container_binds_the_clusters_slurm_setup(monkeypatch, tmp_path, binds, expected):
    env = {"JUPYTERHUB_SLURM_BINDS": binds} if binds is not None else {}
    spawner = spawner_for(monkeypatch, tmp_path, account_map="JDoe root\n", **env)
    assert spawner.container_binds == expected
    container = spawner.container()
    assert [a for a in container if a.startswith("--bind=")] == [
        "--bind=/etc/passwd", "--bind=/etc/group", *(f"--bind={b}" for b in expected)
    ]  # fmt: skip
    assert "--no-passwd" in container
    assert container[-2:] == ["/cluster/images/singleuser", "--"]


def test_dask_in_the_notebook_starts_workers_in_the_same_container(monkeypatch, tmp_path):
    spawner = spawner_for(monkeypatch, tmp_path, account_map="JDoe root\n")
    env = spawner.get_env()
    # the worker's job runs on the node, outside the container: the account's home there
    python = shlex.split(env["DASK_JOBQUEUE__SLURM__PYTHON"])
    assert python == ["env", "HOME=/root", *spawner.container(), "python"]
    assert ast.literal_eval(env["DASK_JOBQUEUE__SLURM__JOB_EXTRA_DIRECTIVES"]) == ["--chdir=/root"]
    # Dask formats the link with the environment and the dashboard's port
    link = env["DASK_DISTRIBUTED__DASHBOARD__LINK"].format(
        JUPYTERHUB_SERVICE_PREFIX=env["JUPYTERHUB_SERVICE_PREFIX"], port=8787
    )
    assert link == "/user/JDoe/proxy/8787/status"
    assert not any("server-token" in v for k, v in env.items() if k.startswith("DASK_"))
