"""A real two-node Slurm cluster on this one machine, for tests and benchmarks.

munge, ``slurmctld`` and the first ``slurmd`` (node1) run on the host; the second ``slurmd``
(node2) runs in a network namespace of its own, joined to the host by a veth pair
(10.250.93.1 on the host, 10.250.93.2 inside): a user server on node2 is reached over a real
network, as on a cluster. Every daemon is this class's own: its own munge key and socket, its
own ``slurm.conf`` (``SLURM_CONF``) with free ports, state under ``root`` (a directory of its
own below /var/tmp, readable by the cluster's users: their homes and the image are there).

The cluster's accounts are Linux users in a group of their own (``users_group``); the hub runs
as a user of its own that may run ``sbatch``, ``squeue`` and ``scancel`` as members of that
group and nothing else (a sudoers rule, ``sudoers_rule``): what deploy/slurm/ sets up on a
real submit host. Facts of these daemons on this machine: Slurm 22.05, munge 0.5, cgroup v1
(``proctrack/cgroup``: a job's processes all end with it).

``remove()`` undoes everything in reverse, also after a failed ``start()``: daemons stop by
PID, the namespace and the veth go, the users, group and sudoers rule go, and ``root``.
"""

import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import REPO_ROOT as REPO
from tests.support.hubprocess import JupyterHubProcess

SUBNET = "10.250.93"
HOST_IP, NODE2_IP = f"{SUBNET}.1", f"{SUBNET}.2"


def run(*args, timeout=120, check=True, input=None, env=None, cwd=None) -> str:
    result = subprocess.run(
        args, input=input, capture_output=True, text=True, timeout=timeout, check=False,
        env=env, cwd=cwd,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed: {result.stderr!s:.2000}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # noqa: S104 (only to find a port free on every address)
        return s.getsockname()[1]


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen


@dataclass
class SlurmCluster:
    """``start()`` brings it up; ``users`` are created with ``add_user``; ``env`` is the
    environment the Slurm commands need (``SLURM_CONF``)."""

    cpus_per_node: int = 2
    memory_mb: int = 4000
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    daemons: list = field(default_factory=list)
    users: list = field(default_factory=list)

    def __post_init__(self):
        self.root = Path(f"/var/tmp/obslurm-{self.id}")  # noqa: S108 (a folder of its own)
        self.netns = f"slurm-n2-{self.id}"
        self.veth = f"obsl{self.id}"
        self.users_group = f"obsl{self.id}"
        self.hub_user = f"obsl{self.id}hub"
        self.sudoers_file = Path(f"/etc/sudoers.d/obslurm{self.id}")
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.ctld_port, self.node1_port = free_port(), free_port()
        self._made = []  # what remove() undoes, in order of making

    @property
    def env(self) -> dict:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    @property
    def homes(self) -> Path:
        return self.root / "home"

    @property
    def binds(self) -> list[str]:
        """What ch-run binds into a job's container so that Slurm's commands work there
        (``JUPYTERHUB_SLURM_BINDS``): this cluster's slurm.conf (``SLURM_CONF``) and munge
        socket are under ``root``, in /var/tmp, which the image has (a site's are in /etc/slurm
        and /run/munge, the default)."""
        return [str(self.root.parent)]

    # --- set-up ------------------------------------------------------------------------------
    def start(self):
        if run("ip", "-4", "-o", "addr").count(f" {SUBNET}."):
            raise RuntimeError(f"{SUBNET}.0/24 is in use on this host already (not ours)")
        self.root.mkdir(mode=0o755)
        self._made.append("root")
        self.homes.mkdir(mode=0o755)
        self._network()
        self._accounts()
        self._config()
        self._munge()
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._spawn("slurmd-node1", ["slurmd", "-D", "-N", "node1"])
        nsenter = ["nsenter", f"--net=/var/run/netns/{self.netns}"]
        self._spawn("slurmd-node2", [*nsenter, "slurmd", "-D", "-N", "node2"])
        self.wait_for_nodes("idle")
        return self

    def _network(self):
        run("ip", "netns", "add", self.netns)
        self._made.append("netns")
        inner = f"{self.veth}c"
        run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", inner)
        self._made.append("veth")
        run("ip", "addr", "add", f"{HOST_IP}/24", "dev", self.veth)
        run("ip", "link", "set", self.veth, "up")
        run("ip", "link", "set", inner, "netns", self.netns)
        inside = ["nsenter", f"--net=/var/run/netns/{self.netns}"]
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "link", "set", inner, "name", "eth0")
        run(*inside, "ip", "addr", "add", f"{NODE2_IP}/24", "dev", "eth0")
        run(*inside, "ip", "link", "set", "eth0", "up")
        run(*inside, "ip", "route", "add", "default", "via", HOST_IP)

    def _accounts(self):
        run("groupadd", self.users_group)
        self._made.append("group")
        hub_home = self.root / "hub"
        run("useradd", "--system", "--home-dir", str(hub_home), "--create-home",
            "--shell", "/usr/sbin/nologin", self.hub_user)  # fmt: skip
        self._made.append("hub_user")
        os.chmod(hub_home, 0o700)
        # the hub's right on this submit host: the three Slurm commands, as cluster users only
        rule = self.sudoers_rule(self.hub_user, self.users_group)
        run("visudo", "-c", "-q", "-f", "-", input=rule)
        self.sudoers_file.write_text(rule)
        os.chmod(self.sudoers_file, 0o440)
        self._made.append("sudoers")

    @staticmethod
    def sudoers_rule(hub_user: str, users_group: str) -> str:
        """deploy/slurm/sudoers, what an admin installs, for these names."""
        rule = (REPO / "deploy" / "slurm" / "sudoers").read_text()
        rule = rule.replace("%jupyterhub-users", f"%{users_group}")
        return re.sub(r"\bjupyterhub\b(?![-/.])", hub_user, rule)

    def add_user(self, name: str) -> Path:
        """A cluster account (a Linux user in ``users_group``, the same on every node: they
        share this machine's passwd); returns its home."""
        home = self.homes / name
        run("useradd", "--home-dir", str(home), "--create-home", "--shell", "/bin/bash",
            "--gid", self.users_group, "--no-user-group", name)  # fmt: skip
        self.users.append(name)
        os.chmod(home, 0o700)
        return home

    def _config(self):
        etc = self.root / "etc"
        etc.mkdir()
        for sub in ("state", "log", "spool"):
            (self.root / sub).mkdir()
        shutil.chown(self.root / "state", "slurm", "slurm")
        shutil.chown(self.root / "log", "slurm", "slurm")
        for node in ("node1", "node2"):
            (self.root / "spool" / node).mkdir()
        host = socket.gethostname().split(".")[0]
        nodes = {"node1": (HOST_IP, self.node1_port), "node2": (NODE2_IP, 6818)}
        lines = [
            "ClusterName=obslurm",
            f"SlurmctldHost={host}({HOST_IP})",
            f"SlurmctldPort={self.ctld_port}",
            "SlurmUser=slurm",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "ProctrackType=proctrack/cgroup",
            "TaskPlugin=task/cgroup,task/affinity",
            "JobAcctGatherType=jobacct_gather/cgroup",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "KillWait=5",
            "MinJobAge=60",
            "SchedulerParameters=sched_interval=2",
            f"StateSaveLocation={self.root}/state",
            f"SlurmctldPidFile={self.root}/slurmctld.pid",
            f"SlurmctldLogFile={self.root}/log/slurmctld.log",
            f"SlurmdSpoolDir={self.root}/spool/%n",
            f"SlurmdPidFile={self.root}/slurmd-%n.pid",
            f"SlurmdLogFile={self.root}/log/slurmd-%n.log",
        ]
        for name, (address, port) in nodes.items():
            lines.append(
                f"NodeName={name} NodeHostname={name} NodeAddr={address} Port={port} "
                f"CPUs={self.cpus_per_node} RealMemory={self.memory_mb}"
            )
        # user servers on node2 (the node across a network); "small" holds one job at a time
        lines.append("PartitionName=debug Nodes=node2 Default=YES MaxTime=INFINITE State=UP")
        lines.append("PartitionName=small Nodes=node1 MaxTime=INFINITE MaxCPUsPerNode=1 State=UP")
        lines.append("PartitionName=dask Nodes=ALL MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")
        (etc / "cgroup.conf").write_text(
            "CgroupPlugin=cgroup/v1\nConstrainCores=yes\nConstrainRAMSpace=yes\n"
        )

    def _munge(self):
        # the socket's folder open to all (every client needs it), the key's to munge only
        sockets, private = self.munge_socket.parent, self.root / "munge-private"
        sockets.mkdir(mode=0o755)
        private.mkdir(mode=0o700)
        key = private / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        for path in (sockets, private, key):
            shutil.chown(path, "munge", "munge")
        self._spawn(
            "munged",
            ["runuser", "-u", "munge", "--", "munged", "-F", f"--socket={self.munge_socket}",
             f"--key-file={key}", f"--pid-file={private}/munged.pid",
             f"--log-file={private}/munged.log", f"--seed-file={private}/munged.seed"],
        )  # fmt: skip
        self._wait(self.munge_socket.exists, "munged's socket")

    def _spawn(self, name, command):
        log = open(self.root / f"{name}.out", "ab")  # noqa: SIM115 (the daemon's own output)
        process = subprocess.Popen(
            command, stdout=log, stderr=log, env=self.env, start_new_session=True
        )
        log.close()
        self.daemons.append(Daemon(name, process))

    def _wait(self, ready, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [d.name for d in self.daemons if d.process.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready (exited: {dead}):\n{self.logs()}")
            time.sleep(0.2)

    def wait_for_nodes(self, state, timeout=60):
        def ready():
            out = run("sinfo", "-h", "-N", "-o", "%N %t", check=False, env=self.env)
            seen = dict(line.split() for line in out.splitlines() if line.strip())
            return len(seen) == 2 and all(s == state for s in seen.values())

        self._wait(ready, f"both nodes {state}")

    def logs(self) -> str:
        parts = []
        for path in sorted(self.root.glob("*.out")) + sorted((self.root / "log").glob("*.log")):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}")
        return "\n".join(parts)

    # --- while it runs -------------------------------------------------------------------------
    def slurm(self, *args, user=None, check=True) -> str:
        """A Slurm command as root or (``user``) as that cluster user, in their home (where
        sbatch puts a job's output)."""
        prefix = ["runuser", "-u", user, "--"] if user else []
        cwd = self.homes / user if user else None
        return run(*prefix, *args, env=self.env, check=check, cwd=cwd)

    def jobs(self, user=None) -> list[dict]:
        """squeue's view: [{"id", "state", "reason", "node", "name", "user"}]."""
        out = self.slurm("squeue", "-h", "-o", "%i|%T|%r|%N|%j|%u", *(["-u", user] if user else []))
        keys = ("id", "state", "reason", "node", "name", "user")
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines()]

    def processes_of(self, user) -> dict[int, str]:
        """PID -> command line of every process ``user`` runs on this machine (both nodes)."""
        uid = pwd.getpwnam(user).pw_uid
        out = run("ps", "-U", str(uid), "-o", "pid=,args=", check=False)
        return {int(pid): args for pid, args in (line.split(None, 1) for line in out.splitlines())}

    def job_steps(self) -> list[int]:
        """PIDs of this cluster's ``slurmstepd`` processes (they leave slurmd's session)."""
        ours = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for pid in run("pgrep", "-x", "slurmstepd", check=False).split():
            try:
                if ours in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    pids.append(int(pid))
            except OSError:
                pass
        return pids

    # --- tear-down -----------------------------------------------------------------------------
    def remove(self):
        if self.daemons:
            # jobs end first, while slurmd can still clean up after them
            ids = run("squeue", "-h", "-o", "%i", check=False, env=self.env).split()
            if ids:
                run("scancel", "--full", *ids, check=False, env=self.env)
            deadline = time.monotonic() + 30
            while self.job_steps() and time.monotonic() < deadline:
                time.sleep(0.5)
        for daemon in reversed(self.daemons):
            self._stop(daemon.process)
        self.daemons.clear()
        for pid in self.job_steps():  # a step whose slurmd went first
            os.kill(pid, signal.SIGKILL)
        for user in self.users:
            for pid in run("pgrep", "-u", user, check=False).split():
                os.kill(int(pid), signal.SIGKILL)
            run("userdel", user, check=False)
        self.users.clear()
        undo = {
            "sudoers": lambda: self.sudoers_file.unlink(missing_ok=True),
            "hub_user": lambda: run("userdel", self.hub_user, check=False),
            "group": lambda: run("groupdel", self.users_group, check=False),
            "veth": lambda: run("ip", "link", "del", self.veth, check=False),
            "netns": lambda: run("ip", "netns", "del", self.netns, check=False),
            "root": lambda: shutil.rmtree(self.root, ignore_errors=True),
        }
        for made in reversed(self._made):
            undo[made]()
        self._made.clear()

    @staticmethod
    def _stop(process, timeout=30):
        if process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


CHARLIECLOUD_CACHE = Path("/var/tmp/openbis-jupyterhub-charliecloud")  # noqa: S108


def charliecloud_image(docker_image: str) -> Path:
    """The Docker image as a Charliecloud image directory (``ch-convert``, what
    deploy/slurm/README.md has admins run), kept by image id: converted once per build."""
    image_id = run("docker", "image", "inspect", "-f", "{{.Id}}", docker_image).strip()
    target = CHARLIECLOUD_CACHE / image_id.split(":")[-1][:16]
    if not target.is_dir():
        CHARLIECLOUD_CACHE.mkdir(mode=0o755, exist_ok=True)
        partial = target.with_name(target.name + f".partial-{uuid.uuid4().hex[:6]}")
        try:
            run("ch-convert", "-i", "docker", docker_image, str(partial), timeout=900)
            partial.chmod(0o755)
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return target


HUB_VENV_CACHE = Path("/var/tmp/openbis-jupyterhub-slurm-hub")  # noqa: S108


def hub_venv() -> Path:
    """The hub's install as deploy/slurm/README.md has admins make it: a venv of the system's
    Python with ``pip install -e '.[slurm]'`` (editable: the checkout's code), readable by the
    hub's user; kept per checkout and pyproject.toml (an editable install runs the code of the
    checkout that made it: another worktree's must not be reused)."""
    key = hashlib.sha256(str(REPO).encode() + (REPO / "pyproject.toml").read_bytes())
    key = key.hexdigest()[:12]
    venv = HUB_VENV_CACHE / key
    if not (venv / ".complete").exists():
        HUB_VENV_CACHE.mkdir(mode=0o755, exist_ok=True)
        shutil.rmtree(venv, ignore_errors=True)  # an install cut short
        run("/usr/bin/python3", "-m", "venv", str(venv))
        run(str(venv / "bin" / "pip"), "install", "-q", "-e", f"{REPO}[slurm]", timeout=900)
        (venv / ".complete").touch()
    return venv / "bin"


def start_slurm_hub(cluster, double, image_dir, **settings):
    """The hub of deploy/slurm/README.md, as the cluster's hub user from ``hub_venv()``,
    spawning on ``cluster`` (hub/jupyterhub_config.py unchanged, JUPYTERHUB_SPAWNER=slurm);
    ``settings`` add to or replace the ones here. Returns the started JupyterHubProcess."""
    workdir = cluster.root / "hub"  # the hub user's home, theirs only
    venv_bin = hub_venv()
    env = {
        "HOME": str(workdir),
        "PATH": f"{venv_bin}:{os.environ['PATH']}",
        "SLURM_CONF": str(cluster.conf),
        "JUPYTERHUB_SPAWNER": "slurm",
        "JUPYTERHUB_SLURM_IMAGE": str(image_dir),
        "JUPYTERHUB_SLURM_BINDS": ",".join(cluster.binds),
        # user servers on the compute nodes reach the hub's API at its cluster address
        "JUPYTERHUB_HUB_IP": HOST_IP,
        "JUPYTERHUB_HUB_CONNECT_IP": HOST_IP,
        **settings,
    }
    return JupyterHubProcess(
        workdir,
        double.url,
        double.ca_file,
        local_spawner=False,
        user=cluster.hub_user,
        venv_bin=venv_bin,
        **env,
    ).start()
