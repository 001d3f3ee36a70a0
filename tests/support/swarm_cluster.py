"""A real three-node Docker Swarm on this one machine, for tests and benchmarks.

The host's Docker engine is the manager; each worker is a second ``dockerd`` in a network
namespace (and UTS namespace, for its own host name) of its own, joined with real join
tokens (the test machines refuse ``--privileged`` containers, "unable to apply caps", so
Docker-in-Docker nodes cannot run there; a second ``dockerd`` in a namespace can). The
namespaces hang on a Linux bridge this class creates, 10.250.X.0/24: the manager is .1, the
workers .2, .3. Swarm's overlay networks take their subnets from 10.252.0.0/16. Traffic goes
only to these addresses. Images reach the workers with ``docker save | docker load``; a
worker's data-root is a tmpfs (memory, not disk: fast to fill, gone with the unmount).

``remove()`` undoes everything in reverse, also after a failed ``start()``: workers leave
and their engines stop (by PID), namespaces, data directories and the bridge go, the host
engine leaves the swarm (``docker swarm leave --force``) and the host's ``docker_gwbridge``
goes when the swarm created it. Other engineers' compose stacks on the host engine are not
touched (swarm mode does not affect them).
"""

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ADDRESS_POOL = "10.252.0.0/16"


def run(*args, timeout=120, check=True, stdin=None) -> str:
    result = subprocess.run(
        args, stdin=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed: {result.stderr!s:.2000}")
    return result.stdout


@dataclass
class Worker:
    name: str  # also its host name and its swarm node's hostname
    ip: str
    bip: str  # its docker0
    root: Path  # data-root
    run_dir: Path  # socket, exec-root, pid file, log
    pid: int | None = None
    node_id: str = ""

    @property
    def host(self) -> str:
        return f"unix://{self.run_dir}/docker.sock"

    def docker(self, *args, timeout=120, check=True) -> str:
        return run("docker", "-H", self.host, *args, timeout=timeout, check=check)


class SwarmCluster:
    def __init__(self, workers=2):
        self.id = uuid.uuid4().hex[:6]
        self.bridge = f"obsw{self.id}"
        octet = self._free_octet()
        self.subnet = f"10.250.{octet}"
        self.manager_ip = f"{self.subnet}.1"
        self.workers = [
            Worker(
                name=f"obsw-{self.id}-w{n}",
                ip=f"{self.subnet}.{n + 1}",
                bip=f"10.253.{octet % 128 * 2 + n - 1}.1/24",
                root=Path(f"/var/lib/obsw-{self.id}-w{n}"),
                run_dir=Path(f"/run/obsw-{self.id}-w{n}"),
            )
            for n in range(1, workers + 1)
        ]
        self.manager_id = ""
        self._gwbridge_existed = True
        self._firewall_rule = ["DOCKER-USER", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    @staticmethod
    def _free_octet() -> int:
        used = run("ip", "-4", "-o", "addr")
        for octet in range(100 + int(uuid.uuid4().hex[:4], 16) % 100, 255):
            if f"10.250.{octet}." not in used:
                return octet
        raise RuntimeError("no free 10.250.X.0/24 for the test swarm")

    # --- set-up ------------------------------------------------------------------------------
    def start(self, images=(), manager_label=None):
        """The bridge, the worker engines, the swarm; ``images`` loaded on every worker."""
        if json.loads(run("docker", "info", "--format", "{{json .Swarm.LocalNodeState}}")) not in (
            "inactive",
            "",
        ):
            raise RuntimeError("the host's Docker engine is in a swarm already (not ours)")
        self._gwbridge_existed = bool(
            run("docker", "network", "ls", "-q", "--filter", "name=^docker_gwbridge$").strip()
        )
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.manager_ip}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        # Docker's FORWARD policy drops bridged traffic between the workers (br_netfilter)
        run("iptables", "-I", *self._firewall_rule)
        for worker in self.workers:
            self._make_namespace(worker)
            self.start_worker(worker, wait_ready=False)
        run(
            "docker", "swarm", "init", "--advertise-addr", self.manager_ip,
            "--listen-addr", f"{self.manager_ip}:2377", "--default-addr-pool", ADDRESS_POOL,
        )  # fmt: skip
        self.manager_id = run("docker", "info", "--format", "{{.Swarm.NodeID}}").strip()
        if manager_label:
            run("docker", "node", "update", "--label-add", manager_label, self.manager_id)
        token = run("docker", "swarm", "join-token", "-q", "worker").strip()
        for worker in self.workers:
            worker.docker(
                "swarm", "join", "--token", token, "--advertise-addr", worker.ip,
                "--listen-addr", f"{worker.ip}:2377", f"{self.manager_ip}:2377",
            )  # fmt: skip
            worker.node_id = worker.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
        if images:
            self.load_images(list(images))
        return self

    def _make_namespace(self, worker):
        netns = worker.name
        host_end, inner_end = f"{self.bridge}{worker.ip[-1]}", f"{self.bridge}c"
        run("ip", "netns", "add", netns)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", inner_end)
        run("ip", "link", "set", host_end, "master", self.bridge, "up")
        run("ip", "link", "set", inner_end, "netns", netns)
        inside = ["nsenter", f"--net=/var/run/netns/{netns}"]
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "link", "set", inner_end, "name", "eth0")
        run(*inside, "ip", "addr", "add", f"{worker.ip}/24", "dev", "eth0")
        run(*inside, "ip", "link", "set", "eth0", "up")
        run(*inside, "ip", "route", "add", "default", "via", self.manager_ip)

    def start_worker(self, worker, wait_ready=True, timeout=90):
        """Start (or restart) the worker's engine; it rejoins the swarm by itself."""
        worker.run_dir.mkdir(parents=True, exist_ok=True)
        if not worker.root.is_mount():
            # its images and volumes in memory: loading is faster, removing is an unmount
            worker.root.mkdir(parents=True, exist_ok=True)
            run("mount", "-t", "tmpfs", "-o", "size=8g,mode=0711", "tmpfs", str(worker.root))
        config = worker.run_dir / "daemon.json"
        config.write_text("{}")  # not the host's /etc/docker/daemon.json
        log = open(worker.run_dir / "dockerd.log", "ab")  # noqa: SIM115 (the engine's log)
        script = f"hostname {worker.name} && exec dockerd " + " ".join(
            [
                f"--config-file {config}",
                f"-H {worker.host}",
                f"--data-root {worker.root}",
                f"--exec-root {worker.run_dir}/exec",
                f"--pidfile {worker.run_dir}/docker.pid",
                f"--bip {worker.bip}",
            ]
        )
        # nsenter (not `ip netns exec`, which remounts /sys: dockerd then finds no cgroups)
        process = subprocess.Popen(
            [
                "nsenter",
                f"--net=/var/run/netns/{worker.name}",
                "unshare",
                "--uts",
                "sh",
                "-c",
                script,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        worker.pid = process.pid
        deadline = time.monotonic() + timeout
        while not worker.docker(
            "version", "-f", "{{.Server.Version}}", check=False, timeout=10
        ).strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{worker.name}'s dockerd did not start: {self.engine_log(worker)}"
                )
            time.sleep(0.3)
        if wait_ready and worker.node_id:
            self.wait_for_node(worker, "ready", timeout=timeout)

    def stop_worker(self, worker, timeout=60):
        """Stop the worker's engine (its containers stop with it), as a node that fails."""
        if worker.pid is None:
            return
        try:
            os.kill(worker.pid, signal.SIGTERM)
        except ProcessLookupError:
            worker.pid = None
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:
                done = worker.pid  # not our child any more: gone
            if done:
                break
            time.sleep(0.2)
        else:
            os.kill(worker.pid, signal.SIGKILL)
            os.waitpid(worker.pid, 0)
        worker.pid = None

    def wait_for_node(self, worker, state, timeout=60):
        """Until the manager sees the worker's node ``ready`` or ``down``."""
        deadline = time.monotonic() + timeout
        while True:
            seen = run("docker", "node", "inspect", "--format", "{{.Status.State}}", worker.node_id)
            if seen.strip() == state:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{worker.name} is {seen.strip()}, not {state}")
            time.sleep(0.5)

    def load_images(self, images):
        """One ``docker save``, streamed into ``docker load`` on every worker at once."""
        loads = [
            subprocess.Popen(
                ["docker", "-H", w.host, "load", "-q"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for w in self.workers
        ]
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        try:
            while chunk := save.stdout.read(1 << 20):
                for load in loads:
                    load.stdin.write(chunk)
        finally:
            for load in loads:
                load.stdin.close()
            save.wait(timeout=600)
            failed = [load.stderr.read().decode() for load in loads if load.wait(timeout=600)]
        if save.returncode or failed:
            raise RuntimeError(f"loading {images} on the workers failed: {failed}")

    def engine_log(self, worker) -> str:
        path = worker.run_dir / "dockerd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def node_of_task(self, service) -> str:
        """The node id the service's running task is on."""
        tasks = run("docker", "service", "ps", "-q", "--filter", "desired-state=running", service)
        task = tasks.split()[0]
        return run("docker", "inspect", "--format", "{{.NodeID}}", task).strip()

    def volumes(self, worker) -> set[str]:
        return set(worker.docker("volume", "ls", "-q").split())

    # --- tear-down ---------------------------------------------------------------------------
    def remove(self):
        for worker in self.workers:
            if worker.pid is not None:
                worker.docker("swarm", "leave", "--force", check=False, timeout=60)
                self.stop_worker(worker)
        run("docker", "swarm", "leave", "--force", check=False, timeout=120)
        if not self._gwbridge_existed:
            run("docker", "network", "rm", "docker_gwbridge", check=False)
        for worker in self.workers:
            # what the engine left mounted below its directories (overlay layers, netns)
            mounts = [
                line.split()[1]
                for line in Path("/proc/mounts").read_text().splitlines()
                if line.split()[1].startswith((str(worker.root), str(worker.run_dir)))
            ]
            for mount in sorted(mounts, reverse=True):
                run("umount", "-l", mount, check=False)
            run("ip", "netns", "del", worker.name, check=False)
            shutil.rmtree(worker.root, ignore_errors=True)
            shutil.rmtree(worker.run_dir, ignore_errors=True)
        run("iptables", "-D", *self._firewall_rule, check=False)
        run("ip", "link", "del", self.bridge, check=False)
