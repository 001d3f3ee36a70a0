"""User servers as Slurm jobs (batchspawner's SlurmSpawner): ``JUPYTERHUB_SPAWNER=slurm``.

The hub runs on a login or service node of the cluster (deploy/slurm/README.md) as a user of
its own and submits one batch job per user server, as the user's cluster account:

- **Who runs as whom.** The account is the openBIS user id, or what the account map
  (``JUPYTERHUB_SLURM_ACCOUNT_MAP``: lines ``openbis_user_id cluster_account``) says for it.
  An openBIS user whose account does not exist on the submit host gets a page saying so, and
  no job. The hub runs ``sbatch``, ``squeue`` and ``scancel`` through ``sudo -u ACCOUNT``
  (batchspawner's ``exec_prefix``); deploy/slurm/sudoers allows exactly these three, as
  members of the cluster's JupyterHub group only.
- **No openBIS token in the job.** The job's script and environment carry the openBIS URL and
  CA, the hub's URLs and JupyterHub's API token for that server (as with every spawner); the
  openBIS token reaches the running server over HTTP, as with every spawner
  (``contract.TOKEN_PATH``). The job's log is the account's, mode 0600 (``SLURM_UMASK``).
- **The software.** The single-user image, converted once to a Charliecloud image directory
  on storage every node sees (``JUPYTERHUB_SLURM_IMAGE``: ``ch-convert`` from the Docker
  image), run rootless by ``ch-run`` inside the job step: every process of the server stays in
  the job's cgroup and ends with it (``scancel``, walltime). The account's cluster home is the
  server's home (``ch-run --home``).
- **Where it runs.** The server picks a free port on its node and tells the hub
  (batchspawner's API; our launcher does it, ``singleuser/launch.py``); the hub reaches it at
  the node's address from ``scontrol show node`` (``NodeAddr``), so compute nodes need no DNS
  names the hub can resolve.
- **What users choose and see.** A spawn form (partition, CPUs, memory, GPUs, walltime within
  the admin's limits) on the hub's Start button; a link with a destination (the ELN's) starts
  with the defaults, never stopping at a form. While the job waits, the progress page shows
  Slurm's reason and the job's place in its partition's queue. A job that ended (walltime,
  ``scancel``) is noticed at the next poll (``Spawner.poll_interval``), and the next link
  starts a new one.
- **The cluster from the notebook.** ``ch-run`` binds the node's Slurm configuration and
  munge socket into the container (``container_binds``; the image has Debian's Slurm client),
  so ``sbatch`` and ``squeue`` in a notebook or terminal submit as the account. Dask's
  configuration comes in the job's environment (``dask_env``): ``SLURMCluster(cores=1,
  memory="1GB")`` starts its workers as the account's jobs running the same image, and the
  dashboard link opens through the user's server (jupyter-server-proxy).
"""

import asyncio
import json
import pwd
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from batchspawner import SlurmSpawner
from batchspawner.api import BatchSpawnerAPIHandler
from jupyterhub.apihandlers import default_handlers
from tornado import web
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default

from .settings import SettingError

# what ch-run calls the home it mounts (Charliecloud: "--home: host $HOME at guest /home/$USER")
GUEST_HOME = "/home/{account}"
# squeue's answer for a job: state|node|reason (a reason may hold spaces, so it goes last)
QUERY_FORMAT = "%T|%B|%r"


def read_account_map(path: str) -> dict[str, str]:
    """``openbis_user_id cluster_account`` per line; ``#`` starts a comment."""
    accounts = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{path}, line {number}: expected 'openbis_user_id cluster_account'")
        accounts[fields[0]] = fields[1]
    return accounts


def walltime(hours: float) -> str:
    """Slurm's ``--time`` for a number of hours: ``H:MM:00``."""
    minutes = round(hours * 60)
    return f"{minutes // 60}:{minutes % 60:02d}:00"


BATCH_SCRIPT = """#!/bin/bash
#SBATCH --job-name={{job_name}}
#SBATCH --output={{homedir}}/.jupyterhub-slurm-%j.log
#SBATCH --chdir={{homedir}}
#SBATCH --export={{keepvars}}
{% if partition %}#SBATCH --partition={{partition}}
{% endif %}{% if runtime %}#SBATCH --time={{runtime}}
{% endif %}{% if memory %}#SBATCH --mem={{memory}}
{% endif %}{% if gres %}#SBATCH --gres={{gres}}
{% endif %}{% if nprocs %}#SBATCH --cpus-per-task={{nprocs}}
{% endif %}{% if options %}#SBATCH {{options}}
{% endif %}
# the user's server (hub/openbis_jupyterhub/hub/slurm.py); no credential is in this script
umask 077
{{prologue}}
exec {{srun}} {{cmd}}
"""


class PortReportHandler(BatchSpawnerAPIHandler):
    """``POST /hub/api/batchspawner``, batchspawner's API, for what it is for: a starting
    server tells the hub its port, once.

    Upstream's handler sets every attribute the request names on the spawner of the token's
    server (``exec_prefix``, ``batch_script``, ``image_dir``, …): user code, which holds its
    server's API token, could make the hub run commands of its choosing. This one takes
    ``{"port": N}`` only, and only while that server starts and has no port yet."""

    @web.authenticated
    def post(self):
        token = self.get_auth_token()
        spawner = next(
            (s for s in self.current_user.spawners.values() if s.api_token == token), None
        )
        data = self.get_json_body()
        port = data.get("port") if isinstance(data, dict) else None
        if not isinstance(data, dict) or set(data) != {"port"} or type(port) is not int:
            raise web.HTTPError(400, 'expected {"port": <number>}')
        if not 0 < port < 65536:
            raise web.HTTPError(400, f"{port} is not a port")
        if spawner is None or spawner.pending != "spawn" or spawner.port != 0:
            raise web.HTTPError(403, "only a starting server tells the hub its port, once")
        spawner.port = port
        self.set_status(201)
        self.finish(json.dumps({"message": "BatchSpawner data configured"}))


# in place of upstream's, which importing batchspawner registered
default_handlers[:] = [
    (path, PortReportHandler if handler is BatchSpawnerAPIHandler else handler)
    for path, handler in default_handlers
]


class OpenBISSlurmSpawner(SlurmSpawner):
    """SlurmSpawner running the single-user image with Charliecloud, as the user's cluster
    account, with a spawn form within limits and Slurm's pending reason on the progress page."""

    image_dir = Unicode(
        config=True,
        help="""The single-user image as a Charliecloud image directory, at the same path on
        every compute node (``ch-convert -i docker openbis-jupyterhub/singleuser:latest DIR``).""",
    )
    account_map = Unicode(
        "",
        config=True,
        help="""File of ``openbis_user_id cluster_account`` lines for users whose cluster
        account is not named like their openBIS user id; read at every start.""",
    )
    partitions = List(
        Unicode(),
        config=True,
        help="Partitions users may choose in the spawn form; the first is the default. "
        "Empty: the cluster's default partition only.",
    )
    max_cpus = Integer(4, config=True, help="Most CPUs a user may ask for.")
    max_memory_gb = Float(32, config=True, help="Most memory (GiB) a user may ask for.")
    max_gpus = Integer(0, config=True, help="Most GPUs (gres gpu) a user may ask for; 0: none.")
    max_hours = Float(24, config=True, help="Longest walltime (hours) a user may ask for.")
    default_hours = Float(8, config=True, help="The walltime of a server started with defaults.")
    default_cpus = Integer(1, config=True, help="The CPUs of a server started with defaults.")
    default_memory_gb = Float(4, config=True, help="The memory (GiB) of a server with defaults.")
    node_addresses = Dict(
        Unicode(),
        config=True,
        help="""Node name -> address the hub reaches it at. Nodes not listed: their ``NodeAddr``
        from ``scontrol show node`` (the node name itself where that is all Slurm knows).""",
    )
    # the checked user_options of the current start (checked_options)
    slurm_request = Dict()

    container_binds = List(
        Unicode(),
        ["/etc/slurm", "/run/munge"],
        config=True,
        help="""Host paths bound into the server's container (``ch-run -b SRC[:DST]``): the
        node's Slurm configuration and munge socket, so that ``sbatch``, ``squeue`` and Dask's
        ``SLURMCluster`` work from the notebook. Every SRC must exist on every compute node and
        every DST in the image (the single-user image has /etc/slurm and /run/munge).""",
    )

    node_accounts = Bool(
        True,
        config=True,
        help="""The container sees the node's /etc/passwd and /etc/group (``ch-run --no-passwd
        -b /etc/passwd -b /etc/group``): Slurm's commands must resolve ``SlurmUser`` and
        show users' names. False: ch-run's own files, which hold the account only (then
        ``sbatch`` and ``squeue`` fail on a slurm.conf naming a SlurmUser).""",
    )

    pending_poll_interval = Float(
        1, config=True, help="Seconds between looks at a waiting job for the progress page."
    )

    batch_script = Unicode(BATCH_SCRIPT).tag(config=True)
    batch_query_cmd = Unicode(f"squeue -h -j {{job_id}} -o '{QUERY_FORMAT}'").tag(config=True)
    state_exechost_re = Unicode(r"^[A-Z]+\|([^|\s]+)\|").tag(config=True)
    # srun: the server is a job step (its processes in the step's cgroup); --export=ALL
    # because "#SBATCH --export=<list>" makes srun drop PATH otherwise
    req_srun = Unicode("srun --export=ALL").tag(config=True)
    # our launcher reports the port (singleuser/launch.py): no batchspawner in the image
    batchspawner_singleuser_cmd = Unicode("").tag(config=True)
    req_job_name = Unicode("jupyterhub").tag(config=True)

    # --- the cluster account ---------------------------------------------------------------
    @property
    def account(self) -> str:
        accounts = read_account_map(self.account_map) if self.account_map else {}
        return accounts.get(self.user.name, self.user.name)

    def account_entry(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(self.account)
        except KeyError:
            message = (
                f"The openBIS user {self.user.name} has no account on this cluster"
                + (f" ({self.account})" if self.account != self.user.name else "")
                + ". Ask the cluster's admins for one; until then Jupyter cannot start for you."
            )
            error = web.HTTPError(403, "%s", message)
            error.jupyterhub_message = message
            raise error from None

    @default("req_username")
    def _req_username_default(self):
        return self.account

    @default("req_homedir")
    def _req_homedir_default(self):
        return self.account_entry().pw_dir

    def user_env(self, env):
        entry = self.account_entry()
        env.update(USER=entry.pw_name, HOME=entry.pw_dir, SHELL=entry.pw_shell or "/bin/bash")
        return env

    def get_env(self):
        env = super().get_env()
        # the job's log file and anything slurmstepd creates: the account's only
        env["SLURM_UMASK"] = "0077"
        env.update(self.dask_env())
        return env

    # --- the server in the job ---------------------------------------------------------------
    @property
    def guest_home(self) -> str:
        return GUEST_HOME.format(account=self.account)

    def container(self) -> list[str]:
        """``ch-run`` with the image's environment, the account's home and the cluster's
        Slurm binds, up to ``--``: the server's job and the Dask workers' jobs."""
        ca_bundle = f"{self.guest_home}/.pybis/ca-bundle.pem"  # the image's hooks write it
        binds = [f"--bind={bind}" for bind in self.container_binds]
        if self.node_accounts:
            binds = ["--no-passwd", "--bind=/etc/passwd", "--bind=/etc/group", *binds]
        return [
            "ch-run", "--home", *binds, "--set-env", f"--set-env=HOME={self.guest_home}",
            f"--set-env=REQUESTS_CA_BUNDLE={ca_bundle}", f"--set-env=SSL_CERT_FILE={ca_bundle}",
            "--cd", self.guest_home, self.image_dir, "--",
        ]  # fmt: skip

    def cmd_formatted_for_batch(self):
        """The container, then the image's start script with the server's arguments (quoted
        for the job's shell)."""
        return shlex.join([*self.container(), *self.cmd, *self.get_args()])

    def dask_env(self) -> dict[str, str]:
        """Dask's configuration for the notebook (``DASK_*``, read at ``import dask``):
        ``SLURMCluster``'s workers run ``python`` in the same container as the server, start in
        the account's home on the node (the container's home path may not exist there), and
        the dashboard link goes through the user's server (jupyter-server-proxy)."""
        home = self.account_entry().pw_dir
        # the worker's job inherits the notebook's HOME (the container's path); ch-run --home
        # mounts the node's
        python = ["env", f"HOME={home}", *self.container(), "python"]
        return {
            "DASK_JOBQUEUE__SLURM__PYTHON": shlex.join(python),
            "DASK_JOBQUEUE__SLURM__JOB_EXTRA_DIRECTIVES": json.dumps([f"--chdir={home}"]),
            "DASK_DISTRIBUTED__DASHBOARD__LINK": "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status",
        }

    def get_args(self):
        # the image's configuration names jovyan's home as the server's root (other spawners
        # mount the user's files there); here the home is the account's
        return [*super().get_args(), f"--ServerApp.root_dir={self.guest_home}"]

    @default("cmd")
    def _cmd_default(self):
        return ["start-singleuser.sh"]

    @default("notebook_dir")
    def _notebook_dir_default(self):
        return self.guest_home

    # --- start: the node's address, a readable failure --------------------------------------
    async def start(self):
        self.account_entry()  # a readable page, and no job, for a user without an account
        self.slurm_request = self.checked_options(self.user_options or {})
        if not self.image_dir:
            raise RuntimeError("OpenBISSlurmSpawner.image_dir is not set")
        ip, port = await super().start()
        return await self.node_address(ip), port

    async def node_address(self, node: str) -> str:
        if node in self.node_addresses:
            return self.node_addresses[node]
        out = await self.run_command(f"scontrol show node -o {shlex.quote(node)}")
        match = re.search(r"\bNodeAddr=(\S+)", out)
        return match.group(1) if match else node

    # --- what the progress page shows while the job waits ------------------------------------
    def job_reason(self) -> str:
        parts = self.job_status.split("|", 2)
        return parts[2].strip() if len(parts) == 3 else ""

    async def queue_position(self) -> int | None:
        """The job's place among the pending jobs of its partition (1: next)."""
        partition = self.get_req_subvars()["partition"]
        command = "squeue -h -t PENDING -S -p,i -o %i" + (
            f" -p {shlex.quote(partition)}" if partition else ""
        )
        try:
            ids = (await self.run_command(command)).split()
        except RuntimeError:
            return None
        return ids.index(self.job_id) + 1 if self.job_id in ids else None

    async def progress(self):
        while True:
            if self.state_ispending():
                position = await self.queue_position()
                place = f", number {position} in the queue" if position else ""
                reason = self.job_reason() or "waiting"
                yield {"message": f"Slurm job {self.job_id} pending ({reason}){place}"}
            elif self.state_isrunning():
                yield {"message": f"Slurm job {self.job_id} running; the server is starting"}
                return
            else:
                yield {"message": "Submitting the Slurm job"}
            await asyncio.sleep(self.pending_poll_interval)

    # --- the spawn form ---------------------------------------------------------------------
    @default("options_form")
    def _options_form_default(self):
        return self.render_options_form

    def render_options_form(self, spawner) -> str:
        """The form on the hub's Start button; nothing (start with the defaults) when the
        request says where to go next: the ELN's links and every /user/… redirect."""
        handler = getattr(self, "handler", None)
        if handler is not None and handler.get_argument("next", ""):
            return ""
        partitions = (
            "".join(f'<option value="{p}">{p}</option>' for p in self.partitions)
            or '<option value="">(the cluster\'s default)</option>'
        )
        field = (
            '<div class="form-group"><label for="{name}">{label}</label>'
            '<input class="form-control" type="number" id="{name}" name="{name}" '
            'min="{low}" max="{high}" step="{step}" value="{value}"></div>'
        )
        fields = [
            '<div class="form-group"><label for="partition">Partition</label>'
            f'<select class="form-control" id="partition" name="partition">{partitions}</select>'
            "</div>",
            field.format(name="cpus", label=f"CPUs (at most {self.max_cpus})", low=1,
                         high=self.max_cpus, step=1, value=self.default_cpus),
            field.format(name="memory_gb", label=f"Memory, GiB (at most {self.max_memory_gb:g})",
                         low=0.5, high=self.max_memory_gb, step=0.5,
                         value=f"{self.default_memory_gb:g}"),
            field.format(name="hours", label=f"Walltime, hours (at most {self.max_hours:g})",
                         low=0.25, high=self.max_hours, step=0.25,
                         value=f"{self.default_hours:g}"),
        ]  # fmt: skip
        if self.max_gpus:
            fields.append(
                field.format(
                    name="gpus",
                    label=f"GPUs (at most {self.max_gpus})",
                    low=0,
                    high=self.max_gpus,
                    step=1,
                    value=0,
                )  # fmt: skip
            )
        return "\n".join(fields)

    # user_options, from the form, a query or the REST API: {partition, cpus, memory_gb,
    # hours, gpus}; checked at every start (checked_options), as the API passes them unchecked
    # and JupyterHub reuses a user's last choices for a start without any (the ELN's)
    FORM_FIELDS = frozenset({"partition", "cpus", "memory_gb", "hours", "gpus"})

    def options_from_form(self, formdata) -> dict:
        options = {key: values[0] for key, values in formdata.items()}
        self.checked_options(options)  # the form again, with the reason, when one is wrong
        return options

    def options_from_query(self, query) -> dict:
        return self.options_from_form(query)

    def checked_options(self, given: Mapping[str, object]) -> dict:
        """The user's choices within the admin's limits, in batchspawner's template names and
        Slurm's words; a clear error otherwise."""
        unknown = set(given) - self.FORM_FIELDS
        if unknown:
            raise web.HTTPError(400, f"unknown options: {', '.join(sorted(unknown))}")

        def number(name, kind, low, high):
            text = str(given.get(name, "")).strip()
            if not text:
                return None
            try:
                value = kind(text)
            except ValueError:
                raise web.HTTPError(400, f"{name}: {text!r} is not a number") from None
            if not low <= value <= high:
                raise web.HTTPError(400, f"{name} must be between {low:g} and {high:g}")
            return value

        partition = str(given.get("partition", "")).strip()
        if partition and partition not in self.partitions:
            raise web.HTTPError(400, f"partition {partition!r} is not offered here")
        cpus = number("cpus", int, 1, self.max_cpus)
        memory = number("memory_gb", float, 0.5, self.max_memory_gb)
        hours = number("hours", float, 0.25, self.max_hours)
        gpus = number("gpus", int, 0, self.max_gpus)
        options = {
            "partition": partition,
            "nprocs": str(cpus) if cpus else "",
            "memory": f"{round(memory * 1024)}M" if memory else "",
            "runtime": walltime(hours) if hours else "",
            "gres": f"gpu:{gpus}" if gpus else "",
        }
        return {key: value for key, value in options.items() if value}

    def get_req_subvars(self):
        """batchspawner's template values: the user's choices, else the defaults."""
        subvars = super().get_req_subvars()
        defaults = {
            "partition": self.req_partition or (self.partitions[0] if self.partitions else ""),
            "nprocs": str(self.default_cpus),
            "memory": f"{round(self.default_memory_gb * 1024)}M",
            "runtime": walltime(self.default_hours),
            "gres": "",
        }
        return {**subvars, **defaults, **self.slurm_request}


def configure(c, settings: Mapping[str, object]) -> None:
    if not settings["JUPYTERHUB_SLURM_IMAGE"]:
        raise SettingError(
            "JUPYTERHUB_SPAWNER=slurm needs JUPYTERHUB_SLURM_IMAGE: the single-user image as a "
            "Charliecloud directory every compute node sees (deploy/slurm/README.md)."
        )
    c.OpenBISSlurmSpawner.image_dir = settings["JUPYTERHUB_SLURM_IMAGE"]
    c.OpenBISSlurmSpawner.account_map = settings["JUPYTERHUB_SLURM_ACCOUNT_MAP"] or ""
    c.OpenBISSlurmSpawner.partitions = settings["JUPYTERHUB_SLURM_PARTITIONS"] or []
    c.OpenBISSlurmSpawner.max_cpus = settings["JUPYTERHUB_SLURM_MAX_CPUS"]
    c.OpenBISSlurmSpawner.max_memory_gb = settings["JUPYTERHUB_SLURM_MAX_MEMORY"] / 1024**3
    c.OpenBISSlurmSpawner.max_gpus = settings["JUPYTERHUB_SLURM_MAX_GPUS"]
    c.OpenBISSlurmSpawner.max_hours = settings["JUPYTERHUB_SLURM_MAX_HOURS"]
    c.OpenBISSlurmSpawner.default_hours = settings["JUPYTERHUB_SLURM_HOURS"]
    c.OpenBISSlurmSpawner.default_memory_gb = settings["JUPYTERHUB_MEM_LIMIT"] / 1024**3
    if settings["JUPYTERHUB_CPU_LIMIT"]:
        c.OpenBISSlurmSpawner.default_cpus = max(1, round(settings["JUPYTERHUB_CPU_LIMIT"]))
    # a job that ended (walltime, scancel) is noticed at the next poll: one squeue per server
    c.Spawner.poll_interval = settings["JUPYTERHUB_SLURM_POLL_INTERVAL"]
    # Slurm's client finds a non-default slurm.conf by SLURM_CONF, also through sudo -E
    c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "SLURM_CONF"]
    if settings["JUPYTERHUB_SLURM_BINDS"] is not None:
        binds = settings["JUPYTERHUB_SLURM_BINDS"]
        c.OpenBISSlurmSpawner.container_binds = [] if binds == ["none"] else binds
