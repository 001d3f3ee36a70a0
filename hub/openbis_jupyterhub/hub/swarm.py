"""User servers as Docker Swarm services (SwarmSpawner): ``JUPYTERHUB_SPAWNER=swarm``.

The hub runs on a manager node (deploy/swarm/stack.yaml) and creates one swarm service per
user server through the Docker socket, on the overlay network it shares with them: the hub
reaches each server at its task's address there. Everything of ours (openBIS sign-in, notebook
endpoint, token hand-over) is the same as with DockerSpawner; this module holds only what
Swarm needs differently, in ``OpenBISSwarmSpawner`` (dockerspawner 14.0.0's SwarmSpawner plus):

- **Home volumes that work** (dockerspawner issue #536): the stock spawner turns every volume
  into a bind mount, which Swarm rejects for a named volume. Ours emits ``type=volume``
  mounts, with the driver options (NFS) formatted per user: what the unreleased fix (PR #537)
  does. Drop ``mounts`` here once a dockerspawner release has it.
- **A user's server goes where their files are**: node-local home volumes (the default) tie a
  user to the node that first ran their server; its id is kept in the spawner's state (the
  hub's database) and becomes a placement constraint (``node.id == ...``). With NFS homes
  (``JUPYTERHUB_HOMES_NFS``) every node mounts the same directory, and servers go anywhere.
- **Service names within 63 characters** (Swarm's limit; escaping triples special
  characters): longer names are cut and end in 8 hex digits of the user id's SHA-256, so
  they stay stable and distinct.
- **The same hardening as DockerSpawner's** (hub/docker.py): capabilities dropped,
  no-new-privileges, a process limit, a read-only root with a size-limited ``/tmp`` (tmpfs),
  expressed in Swarm's service specification (``ContainerSpec``, ``Resources.Limits.Pids``,
  a tmpfs mount; no-new-privileges through ``setpriv`` in the command). Swarm sets no swap
  limit of its own (Docker's default: as much swap as memory); nodes without swap, as usual
  for container hosts, have none to give.
- **Failures at once, with the reason**: a rejected task (missing image, bad mount), a task
  no node can take, or a home node that is down ends the spawn within seconds, with Swarm's
  own error, instead of after ``start_timeout``. The hub, not Swarm, restarts servers
  (restart condition ``none``), and a server whose node went down counts as stopped.
"""

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Mapping

from docker.errors import NotFound
from docker.types import (
    ContainerSpec,
    DriverConfig,
    EndpointSpec,
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    TaskTemplate,
)
from dockerspawner import SwarmSpawner
from traitlets import Bool, Float, Int, List, Unicode, default

HOME = "/home/jovyan"
MAX_SERVICE_NAME = 63  # a DNS label (moby/swarmkit: validateAnnotations)
# task states on the way to "running" (moby/swarmkit api/types.proto, TaskState)
STARTING = {"new", "pending", "assigned", "accepted", "ready", "preparing", "starting"}
# the label user services carry: scripts/swarm-down finds them by it
NETWORK_LABEL = "org.openbis-jupyterhub.network"


def service_name(name: str, key: str) -> str:
    """``name`` if Swarm accepts its length, else its first 54 characters, ``-`` and 8 hex
    digits of ``key``'s SHA-256 (``key``: the raw user id and server name): the same user
    always gets the same name, and two users sharing a long beginning get different ones."""
    if len(name) <= MAX_SERVICE_NAME:
        return name
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{name[: MAX_SERVICE_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def nfs_volume_options(homes_nfs: str, options: str) -> dict[str, str]:
    """The ``local`` volume driver's options for a user's home on NFS: ``homes_nfs`` is
    ``server:/export``; each user gets ``/export/{username}`` (formatted per user by the
    spawner), which must exist on the server, owned by 1000:100 (jovyan)."""
    server, sep, export = homes_nfs.partition(":")
    if not (server and sep and export.startswith("/")):
        raise ValueError(f"JUPYTERHUB_HOMES_NFS={homes_nfs!r}: expected server:/export/path")
    return {
        "type": "nfs",
        "o": f"addr={server},{options}" if options else f"addr={server}",
        "device": f":{export.rstrip('/')}/{{username}}",
    }


class OpenBISSwarmSpawner(SwarmSpawner):
    """SwarmSpawner with working home volumes, sticky placement, short names, fast failures."""

    constraints = List(
        Unicode(),
        config=True,
        help="Placement constraints of every user server, e.g. ['node.role == worker'].",
    )
    sticky = Bool(
        True,
        config=True,
        help="""Start a user's server only on the node that ran it first, where its node-local
        home volume is. Turn off when homes are on shared storage (NFS volume options).""",
    )
    unschedulable_timeout = Float(
        20,
        config=True,
        help="Seconds a task may wait for a node that can take it before the spawn fails.",
    )
    pids_limit = Int(
        0, config=True, help="Most processes (and threads) a user's server may have; 0: no limit."
    )
    tmp_size = Unicode(
        "", config=True, help="Size of the tmpfs mounted on /tmp, e.g. '1G'; empty: no tmpfs."
    )
    # DockerSpawner sends every Docker call of every user through one thread: looking more
    # often slows everyone's start when many start at once
    task_poll_interval = Float(1, config=True, help="Seconds between looks at a task.")

    # the node that holds the user's home volume: kept in the hub's database (get_state)
    node_id = Unicode("")
    node_name = Unicode("")

    @default("object_name")
    def _object_name_default(self):
        key = f"{self.user.name}/{getattr(self, 'name', '') or ''}"
        return service_name(self._render_templates(self.name_template), key)

    # --- state: the home node survives stops and hub restarts ------------------------------
    def load_state(self, state):
        super().load_state(state)
        self.node_id = state.get("node_id", "")
        self.node_name = state.get("node_name", "")

    def get_state(self):
        state = super().get_state()
        if self.node_id:
            state.update(node_id=self.node_id, node_name=self.node_name)
        return state

    # (clear_state, called when the server stops, keeps node_id: the volume stays there)

    # --- mounts: dockerspawner#536 / PR #537 --------------------------------------------------
    @property
    def mounts(self):
        """``type=volume`` mounts (upstream: ``type=bind``, which Swarm rejects for volume
        names); the driver options are formatted per user ({username}) like the names."""
        driver = None
        if self.volume_driver:
            options = {
                key: self.format_volume_name(value, self)
                for key, value in self.volume_driver_options.items()
            }
            driver = DriverConfig(self.volume_driver, options or None)
        mounts = [
            Mount(
                target=bind["bind"],
                source=source,
                type="volume",
                read_only=bind["mode"] == "ro",
                driver_config=driver,
            )
            for source, bind in self.volume_binds.items()
        ]
        if self.tmp_size:
            mounts.append(
                Mount(
                    target="/tmp",  # noqa: S108 (a tmpfs of the user's own)
                    source=None,
                    type="tmpfs",
                    tmpfs_size=self.tmp_size,
                    tmpfs_mode=0o1777,
                )
            )
        return mounts

    # --- create, wait, poll -------------------------------------------------------------------
    def placement_constraints(self) -> list[str]:
        constraints = list(self.constraints)
        if self.sticky and self.node_id:
            constraints.append(f"node.id == {self.node_id}")
        return constraints

    async def check_home_node(self):
        """Fail at once, saying why, when the node holding the user's home cannot run it."""
        if not (self.sticky and self.node_id):
            return
        name = self.node_name or self.node_id
        try:
            node = await self.docker("inspect_node", self.node_id)
        except NotFound:
            raise RuntimeError(
                f"The files of {self.user.name} are on the swarm node {name}, which has left "
                "the swarm. An admin can bring the volume to another node and delete the "
                "user in the hub's admin page (files stay), so that the next start picks a node."
            ) from None
        state = node["Status"]["State"]
        availability = node["Spec"]["Availability"]
        if state != "ready" or availability != "active":
            raise RuntimeError(
                f"The files of {self.user.name} are on the swarm node {name}, which is "
                f"{state} ({availability}); the server can start only there. Try again when "
                "the node is back, or ask your JupyterHub admin."
            )

    async def create_object(self):
        await self.check_home_node()
        return await self.docker("create_service", **await self.service_spec())

    async def service_spec(self) -> dict:
        """``create_service``'s arguments: upstream's, with our mounts, placement, labels and
        restart policy."""
        container = {
            "image": self.image,
            "env": self.get_env(),
            "args": await self.get_command(),
            "mounts": self.mounts,
        }
        container.update(self.extra_container_spec)
        resources = {
            "mem_limit": self.mem_limit,
            "mem_reservation": self.mem_guarantee,
            "cpu_limit": int(self.cpu_limit * 1e9) if self.cpu_limit else None,
            "cpu_reservation": int(self.cpu_guarantee * 1e9) if self.cpu_guarantee else None,
        }
        resources.update(self.extra_resources_spec)
        resources = Resources(**resources)
        if self.pids_limit:  # not among docker-py's Resources arguments (Engine API 1.41)
            resources.setdefault("Limits", {})["Pids"] = self.pids_limit
        placement = {"constraints": self.placement_constraints() or None}
        placement.update(self.extra_placement_spec)
        task = {
            "container_spec": ContainerSpec(**container),
            "resources": resources,
            "networks": [self.network_name] if self.network_name else [],
            "placement": Placement(**placement),
            # the hub decides when a server runs: a server that exits stays stopped
            "restart_policy": RestartPolicy(condition="none"),
        }
        task.update(self.extra_task_spec)
        # DNS round robin: the service name resolves to the task's own address. Swarm's
        # default (a virtual IP) needs IPVS in every node's kernel, and one task per service
        # needs no load balancing.
        endpoint = (
            {"mode": "dnsrr"} if self.use_internal_ip else {"ports": {None: (self.port, "tcp")}}
        )
        endpoint.update(self.extra_endpoint_spec)
        create = {
            "task_template": TaskTemplate(**task),
            "endpoint_spec": EndpointSpec(**endpoint),
            "name": self.service_name,
            "labels": {NETWORK_LABEL: self.network_name},
        }
        create.update(self.extra_create_kwargs)
        return create

    async def newest_task(self) -> dict | None:
        tasks = await self.docker("tasks", filters={"service": self.service_name})
        return max(tasks, key=lambda t: t["CreatedAt"]) if tasks else None

    async def start_object(self):
        """Wait until the task runs; fail at once when Swarm rejects it or no node takes it.
        A service that failed is removed (JupyterHub stops only servers that poll running)."""
        try:
            await self.wait_for_task()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.remove_object()
                self.object_id = ""
            raise

    async def wait_for_task(self):
        deadline = time.monotonic() + self.start_timeout
        unschedulable_since = None
        while True:
            task = await self.newest_task()
            status = task["Status"] if task else {}
            state = status.get("State", "")
            if task and task.get("NodeID") and state in {"preparing", "starting", "running"}:
                await self.remember_node(task["NodeID"])
            if state == "running":
                return
            error = status.get("Err") or status.get("Message") or state
            if task is None:  # the orchestrator makes it a moment after the service
                state = error = "new"
            elif state not in STARTING:
                raise RuntimeError(f"{self.user.name}'s server did not start on the swarm: {error}")
            if state == "pending" and "no suitable node" in error:
                unschedulable_since = unschedulable_since or time.monotonic()
                if time.monotonic() - unschedulable_since > self.unschedulable_timeout:
                    raise RuntimeError(
                        f"No swarm node can run {self.user.name}'s server: {error} "
                        f"(constraints: {self.placement_constraints() or 'none'})"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.user.name}'s server still {state}: {error}")
            await asyncio.sleep(self.task_poll_interval)

    async def remember_node(self, node_id):
        if node_id == self.node_id and self.node_name:
            return
        node = await self.docker("inspect_node", node_id)
        if self.node_id and self.node_id != node_id:
            self.log.warning("%s's server moved to node %s", self.user.name, node_id)
        self.node_id = node_id
        self.node_name = node["Description"]["Hostname"]
        self.log.info("%s's server runs on node %s (%s)", self.user.name, self.node_name, node_id)

    async def get_ip_and_port(self):
        """The task's own address on the network, not its service name: Swarm's DNS learns
        of a task by gossip from its node, and after that node restarted it may still answer
        with the address of the task it ran before."""
        if not self.use_internal_ip:
            return await super().get_ip_and_port()
        task = await self.newest_task()
        for attachment in (task or {}).get("NetworksAttachments", []):
            if attachment["Network"]["Spec"]["Name"] == self.network_name:
                return attachment["Addresses"][0].split("/")[0], self.port
        raise RuntimeError(f"{self.service_name} has no address on {self.network_name}")

    async def poll(self):
        """None while the task runs (or starts) on a node that is up; else why it stopped."""
        task = await self.newest_task()
        if task is None:
            return 0
        state = task["Status"]["State"]
        if task["DesiredState"] != "running" or state not in STARTING | {"running"}:
            return f"task {state} (desired: {task['DesiredState']})"
        if task.get("NodeID"):
            try:
                node = await self.docker("inspect_node", task["NodeID"])
            except NotFound:
                return "its node left the swarm"
            if node["Status"]["State"] != "ready":
                return f"its node is {node['Status']['State']}"
        return None


def configure(c, settings: Mapping[str, object]) -> None:
    c.SwarmSpawner.image = settings["JUPYTERHUB_SINGLEUSER_IMAGE"]
    # the image's start script, named: no inspection of the image on the hub's node.
    # no-new-privileges through setpriv (util-linux, in every Debian image): Swarm's service
    # specification has it only since Engine API 1.46 (Docker 27), and older engines ignore it.
    no_new_privileges = ["setpriv", "--no-new-privs"]
    c.SwarmSpawner.cmd = [
        *(no_new_privileges if settings["JUPYTERHUB_NO_NEW_PRIVILEGES"] else []),
        "start-singleuser.sh",
    ]
    # the stack's overlay network (deploy/swarm/stack.yaml gives it this exact name)
    c.SwarmSpawner.network_name = settings["JUPYTERHUB_NETWORK"]
    c.SwarmSpawner.use_internal_ip = True  # the hub reaches a server by its service name
    # the same names as DockerSpawner's (hub/docker.py): volumes from a single-host stack
    # are found again on that host
    c.SwarmSpawner.prefix = settings["JUPYTERHUB_CONTAINER_PREFIX"]
    c.SwarmSpawner.volumes = {settings["JUPYTERHUB_VOLUME_PREFIX"] + "{username}": HOME}
    c.SwarmSpawner.notebook_dir = HOME
    # each node runs the image it has (no registry is assumed); a missing image fails at once
    c.SwarmSpawner.pull_policy = "skip"
    c.SwarmSpawner.extra_container_spec = container_hardening(settings)
    c.OpenBISSwarmSpawner.pids_limit = settings["JUPYTERHUB_PIDS_LIMIT"]
    c.OpenBISSwarmSpawner.tmp_size = settings["JUPYTERHUB_TMP_SIZE"]
    c.OpenBISSwarmSpawner.constraints = settings["JUPYTERHUB_SWARM_CONSTRAINTS"] or []
    if settings["JUPYTERHUB_HOMES_NFS"]:
        c.SwarmSpawner.volume_driver = "local"
        c.SwarmSpawner.volume_driver_options = nfs_volume_options(
            settings["JUPYTERHUB_HOMES_NFS"], settings["JUPYTERHUB_HOMES_NFS_OPTIONS"]
        )
        c.OpenBISSwarmSpawner.sticky = False


def container_hardening(settings: Mapping[str, object]) -> dict:
    """docker-py ``ContainerSpec`` arguments: hub/docker.py's ``host_config`` for a service
    (no-new-privileges: in the command, see ``configure``)."""
    return {
        "cap_drop": ["ALL"],
        "cap_add": list(settings["JUPYTERHUB_CAP_ADD"]),
        "read_only": settings["JUPYTERHUB_READ_ONLY_ROOT"],
    }
