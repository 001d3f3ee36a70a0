"""User servers as Docker containers (DockerSpawner): ``JUPYTERHUB_SPAWNER=docker``.

One container per user from the single-user image, on a fixed-name Docker network the hub
shares with them: the hub reaches each server directly (proxy routes, token hand-over).
Containers are removed when they stop; the user's files live on a named volume.

Every user runs arbitrary code, so the container grants it nothing it does not need
(docs/security.md): the image runs as jovyan and needs no capability at all, so all are
dropped (``JUPYTERHUB_CAP_ADD`` gives some back); no-new-privileges makes setuid files and file
capabilities inert (the image has none left either); a process limit stops fork bombs; the root
filesystem is read-only, with the home volume and a size-limited ``/tmp`` (tmpfs, counted
against the memory limit) the only writable places; no swap beyond the memory limit.

Between users (``JUPYTERHUB_INTERNAL_SSL``, on by default): JupyterHub's internal_ssl, mutual
TLS. Every server gets a certificate of the hub's ``notebooks-ca`` and accepts only clients
with one of ``hub-ca`` (the hub) or ``proxy-client-ca`` (the proxy): another user's code, even
holding its own server's key, gets no TLS session, so no answer. ``OpenBISDockerSpawner``
brings the certificate into the container (``move_certs``) through the Docker API filter.

Bounded homes (``JUPYTERHUB_HOME_SIZE``): the spawner creates the user's home volume itself,
with the ``local`` driver's ``size`` option, before the container (which would otherwise
create it without), and the hub starts only when the engine can enforce that option
(``check_home_size``): Docker's data-root on XFS mounted with ``pquota``. A home created
before the setting keeps no bound; the spawner logs that at every start of its server.

Environment versions (``JUPYTERHUB_SINGLEUSER_IMAGES``): earlier single-user images kept beside
the current one, each with a label. A user's usual server runs the one picked in the spawn
form (default: the current one; the ELN's one-click links show no form); a JupyterHub named
server ``env-<label>`` (``named_server``) runs a kept one beside it, with the same home volume
(``{prefix}-{user}--{server}``, DockerSpawner's name for named servers). Every server learns
its label and its image's id (``contract.ENV_ENVIRONMENT``, ``ENV_IMAGE_ID``), which saved
analyses record.
"""

import asyncio
import io
import ipaddress
import os
import re
import tarfile
import time
from collections.abc import Mapping
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import docker
from cryptography import x509
from docker.errors import APIError, NotFound
from docker.utils import kwargs_from_env
from dockerspawner import DockerSpawner
from tornado import web
from traitlets import Dict, Float, List, Unicode, default

from .. import contract
from .settings import SettingError

HOME = "/home/jovyan"
PROBE = ".size-probe"  # after the volume prefix; a "." never occurs in escaped user ids
USER_IDS = (1000, 100)  # jovyan:users, who runs the image's server
CERTS_DIR = "/certs"  # where DockerSpawner mounts the certificates volume (read-only)


def certs_archive(paths: Mapping[str, str]) -> bytes:
    """The server's key, certificate and trust bundle (``create_certs``' paths on the hub) as
    a tar for the engine: owned by jovyan, the key readable by jovyan only."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for kind, path in paths.items():
            with open(path, "rb") as f:
                content = f.read()
            info = tarfile.TarInfo(os.path.basename(path))
            info.size = len(content)
            info.uid, info.gid = USER_IDS
            info.mode = 0o400 if kind == "keyfile" else 0o444
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class OpenBISDockerSpawner(DockerSpawner):
    """DockerSpawner whose ``move_certs`` passes the Docker API filter and keeps the key private.

    Upstream's runs a ``busybox`` container (another image, no name of ours) and writes every
    file world-readable (0644). Here: a container of the single-user image named
    ``{container}.certs``, hardened as the user's, created and never started, mounts the user's
    certificates volume (``{volume prefix}{user}.certs``), receives the files (key 0400, owned
    by jovyan), and is removed. The user's container then mounts that volume read-only at
    ``/certs``.

    It also reports a started server as soon as it listens. After ``start()``, JupyterHub
    waits for the server with an exponential, randomised backoff (0.2 s doubling to 5 s): a
    server ready after 4 s is noticed ~1 s later on average. Here ``start()`` itself tries to
    connect every ``ready_poll_interval`` (a refused connection costs next to nothing) and
    returns once the server's port accepts one; JupyterHub's first HTTP request then waits for
    the server's answer.
    """

    public_alt_names = List(
        Unicode(),
        config=True,
        help="""Subject alternative names every server's certificate carries besides its
        container name: the hub's public host. The proxy checks a server's certificate against
        the Host header of the browser's request (node's TLS client does).""",
    )

    environments = Dict(
        Unicode(),
        config=True,
        help="""Environment versions: label -> single-user image, the current one first, then
        the earlier ones kept (JUPYTERHUB_SINGLEUSER_LABEL, JUPYTERHUB_SINGLEUSER_IMAGES).""",
    )
    environment_label = Unicode(help="The label of the image this server runs (set at start).")
    image_id = Unicode(help="The immutable id of the image this server runs (``sha256:…``).")

    @default("apply_user_options")
    def _apply_user_options_default(self):
        return type(self).choose_environment

    async def choose_environment(self, user_options):
        """The image of this start: a named server runs the kept environment it is named
        after; the usual server the one picked in the form, else the current one."""
        labels = list(self.environments)
        if not labels:
            return
        if self.name:
            kept = {named_server(label): label for label in labels[1:]}
            if self.name not in kept:
                raise web.HTTPError(
                    400, "Named servers run the earlier environments kept beside the current "
                    f"one: {', '.join(kept) or 'none are kept'}.",
                )  # fmt: skip
            picked = kept[self.name]
        else:
            picked = user_options.get("environment") or labels[0]
            if picked not in labels:  # the admin has removed it since it was picked
                self.log.warning("%s: environment %r is no longer kept", self._log_name, picked)
                picked = labels[0]
        self.environment_label, self.image = picked, self.environments[picked]
        await self.pull_image(self.image)
        self.image_id = (await self.docker("inspect_image", self.image))["Id"]

    @default("options_form")
    def _options_form_default(self):
        return type(self).environment_form

    def environment_form(self) -> str:
        """The spawn option of the usual server: which environment (only when there is a
        choice; the current one is preselected). Not on the way of a link (``?next=``: the
        ELN's sign-in links, hub/auth.py's landing_url): those start the server at once, in
        the environment picked last, else the current one."""
        link = self.handler is not None and self.handler.get_argument("next", None)
        if len(self.environments) < 2 or self.name or link:
            return ""
        options = "".join(
            f'<option value="{escape(label)}">{escape(label)}'
            f"{' (current)' if i == 0 else ''}: {escape(image)}</option>"
            for i, (label, image) in enumerate(self.environments.items())
        )
        return (
            '<label for="openbis-environment">Environment</label>'
            '<select class="form-control" id="openbis-environment" name="environment">'
            f"{options}</select>"
        )

    @default("options_from_form")
    def _options_from_form_default(self):
        return lambda form: {"environment": form["environment"][0]} if "environment" in form else {}

    def get_env(self):
        env = super().get_env()
        env[contract.ENV_ENVIRONMENT] = self.environment_label
        env[contract.ENV_IMAGE_ID] = self.image_id
        return env

    def template_namespace(self):
        # "--{servername}" for a named server, else nothing: its certificates volume's name
        namespace = super().template_namespace()
        namespace["server_suffix"] = f"--{namespace['servername']}" if self.name else ""
        return namespace

    async def find_environment(self, image_id: str) -> tuple[str, str] | None:
        """(label, named server) of the kept earlier environment whose image has this id."""
        for label, image in list(self.environments.items())[1:]:
            try:
                if (await self.docker("inspect_image", image))["Id"] == image_id:
                    return label, named_server(label)
            except NotFound:
                continue
        return None

    @default("ssl_alt_names")
    def _ssl_alt_names_default(self):
        return [f"DNS:{self.internal_hostname}", *self.public_alt_names]

    async def move_certs(self, paths):
        await self.pull_image(self.image)
        name = f"{self.container_name}.certs"
        volume = self.format_volume_name(self.certs_volume_name, self)
        try:  # left over by a hub that stopped in the middle of this
            await self.docker("remove_container", name)
        except NotFound:
            pass
        # hardened as the user's container (the filter requires it of every container)
        host_config = self.client.create_host_config(
            binds={volume: {"bind": CERTS_DIR, "mode": "rw"}},
            network_mode=self.network_name,
            mem_limit=self.mem_limit,
            **self._cpu_limit(),
            **self.extra_host_config,
        )
        staging = await self.docker(
            "create_container",
            self.image,
            name=name,
            host_config=host_config,
            **self.extra_create_kwargs,
        )
        try:
            await self.docker("put_archive", staging["Id"], CERTS_DIR, certs_archive(paths))
        finally:
            await self.docker("remove_container", staging["Id"])
        return {kind: f"{CERTS_DIR}/{os.path.basename(path)}" for kind, path in paths.items()}

    home_size = Unicode(
        "",
        config=True,
        help="""Size limit of each user's home volume (the local driver's ``size`` option,
        e.g. 10G); empty: unbounded. The engine must support it (check_home_size).""",
    )

    def home_volume(self) -> str:
        """The name of the volume mounted at the home directory."""
        return next(name for name, bind in self.volume_binds.items() if bind["bind"] == HOME)

    async def create_home_volume(self) -> dict:
        """The user's home volume, created with ``home_size`` (an existing one is returned
        as it is: the engine applies driver options at creation only)."""
        name = self.home_volume()
        volume = await self.docker(
            "create_volume", name, driver="local", driver_opts={"size": self.home_size}
        )
        bound = (volume.get("Options") or {}).get("size")
        if bound is None:
            self.log.warning(
                "%s's home volume %s was created without a size limit (before "
                "JUPYTERHUB_HOME_SIZE was set) and stays unbounded (docs/admin-guide.md, Disk)",
                self.user.name,
                name,
            )
        elif bound != self.home_size:
            self.log.warning(
                "%s's home volume %s keeps the size limit it was created with, %s "
                "(JUPYTERHUB_HOME_SIZE=%s applies to new homes)",
                self.user.name,
                name,
                bound,
                self.home_size,
            )
        return volume

    async def create_object(self):
        if self.home_size:
            await self.create_home_volume()
        return await super().create_object()

    def _cpu_limit(self) -> dict:
        """The CPU fields DockerSpawner puts on the user's container (create_object)."""
        if self.cpu_limit is None:
            return {}
        period = self.extra_host_config.get("cpu_period", 100_000)
        return {"cpu_period": period, "cpu_quota": int(self.cpu_limit * period)}

    ready_poll_interval = Float(
        0.05, config=True, help="Seconds between looks at a starting server."
    )
    ready_poll_limit = Float(
        60,
        config=True,
        help="""Seconds start() looks for the server before leaving the rest of the wait to
        JupyterHub (Spawner.http_timeout).""",
    )

    async def start(self):
        ip, port = await super().start()
        await self._wait_until_listening(ip, port)
        return ip, port

    async def _wait_until_listening(self, ip, port):
        deadline = time.monotonic() + self.ready_poll_limit
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 1)
            except (TimeoutError, OSError):
                await asyncio.sleep(self.ready_poll_interval)
                continue
            writer.close()
            return


def named_server(label: str) -> str:
    """The JupyterHub named server of a kept environment: ``env-`` and the label in lower case,
    other characters as ``-`` ("2026.06" -> "env-2026-06"; JupyterHub's server names are
    lower-case letters, digits and single hyphens, at most 30)."""
    return "env-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def alt_name(host: str) -> str:
    """A certificate's subject alternative name for a host name or an IP address."""
    try:
        return f"IP:{ipaddress.ip_address(host)}"
    except ValueError:
        return f"DNS:{host}"


def renew_hub_certificate_without(location: str, names: list[str]) -> None:
    """Drop the hub's internal certificate when it lacks one of ``names``: JupyterHub makes it
    once and keeps it, so a changed public URL would otherwise make every hub page a proxy
    error. JupyterHub signs a new one with the same CA at this start; running servers trust it."""
    from certipy import Certipy

    cert = Path(location, "hub-internal", "hub-internal.crt")
    if not cert.exists():
        return
    sans = x509.load_pem_x509_certificate(cert.read_bytes()).extensions
    sans = sans.get_extension_for_class(x509.SubjectAlternativeName).value
    have = {f"DNS:{n}" for n in sans.get_values_for_type(x509.DNSName)}
    have |= {f"IP:{n}" for n in sans.get_values_for_type(x509.IPAddress)}
    if not set(names) <= have:
        Certipy(store_dir=location).store.remove_files("hub-internal", delete_dir=True)


def check_home_size(client: docker.APIClient, volume_prefix: str, size: str) -> None:
    """Refuse ``JUPYTERHUB_HOME_SIZE`` when the engine cannot enforce it: create a volume
    ``{volume_prefix}.size-probe`` with that size (the engine refuses the option unless its
    data-root is XFS with project quotas), then remove it."""
    probe = volume_prefix + PROBE
    try:  # left over by a hub that stopped in the middle of this
        client.remove_volume(probe)
    except NotFound:
        pass
    try:
        client.create_volume(probe, driver="local", driver_opts={"size": size})
    except APIError as e:
        raise SettingError(
            f"JUPYTERHUB_HOME_SIZE={size}: the Docker engine cannot limit the size of volumes "
            f"({e.explanation}). It can when its data-root (/var/lib/docker) is on XFS mounted "
            "with the pquota option (docs/admin-guide.md, Disk). Or leave "
            "JUPYTERHUB_HOME_SIZE empty: homes are then unbounded."
        ) from None
    client.remove_volume(probe)


def engine() -> docker.APIClient:
    """A client of the Docker engine as DockerSpawner makes its own (DOCKER_HOST: in the
    compose stack, the Docker API filter)."""
    return docker.APIClient(version="auto", **kwargs_from_env())


def configure(c, settings: Mapping[str, object]) -> None:
    image = settings["JUPYTERHUB_SINGLEUSER_IMAGE"]
    c.DockerSpawner.image = image
    # environment versions: the current image's label (default: its tag), then the kept ones
    tag = image.split("/")[-1].split("@")[0].partition(":")[2] or "latest"
    label = settings["JUPYTERHUB_SINGLEUSER_LABEL"] or tag
    kept = settings["JUPYTERHUB_SINGLEUSER_IMAGES"]
    if label in kept or image in kept.values():
        raise SettingError(
            f"JUPYTERHUB_SINGLEUSER_IMAGES lists the current image or its label {label!r}"
        )
    servers = [named_server(k) for k in kept]
    if len(set(servers)) != len(servers) or any(len(n) > 30 for n in servers):
        raise SettingError(
            "JUPYTERHUB_SINGLEUSER_IMAGES: labels must differ in more than case and "
            "punctuation and have at most 26 characters (named servers env-<label>)"
        )
    c.OpenBISDockerSpawner.environments = {label: image, **kept}
    if kept:
        # one named server per kept environment, beside the usual one (same home volume)
        c.JupyterHub.allow_named_servers = True
        c.JupyterHub.named_server_limit_per_user = len(kept)
    c.DockerSpawner.network_name = settings["JUPYTERHUB_NETWORK"]
    c.DockerSpawner.use_internal_ip = True
    # {username} is DockerSpawner's escaped user id (lower case, `-xx` escapes), valid for
    # Docker names and distinct for ids differing only in case: "JDoe" -> "-4a-44oe". The
    # prefixes change only to run two stacks on one Docker engine (the tests do).
    c.DockerSpawner.prefix = settings["JUPYTERHUB_CONTAINER_PREFIX"]
    c.DockerSpawner.volumes = {settings["JUPYTERHUB_VOLUME_PREFIX"] + "{username}": HOME}
    c.DockerSpawner.notebook_dir = HOME
    c.DockerSpawner.remove = True
    c.DockerSpawner.extra_host_config = host_config(settings)
    # numeric, as the Docker API filter requires: no name lookup can make it root
    c.DockerSpawner.extra_create_kwargs = {"user": "{}:{}".format(*USER_IDS)}
    if settings["JUPYTERHUB_HOME_SIZE"]:
        check_home_size(
            engine(), settings["JUPYTERHUB_VOLUME_PREFIX"], settings["JUPYTERHUB_HOME_SIZE"]
        )
        c.OpenBISDockerSpawner.home_size = settings["JUPYTERHUB_HOME_SIZE"]
        # the server shows the home's use against it (singleuser/home.py)
        c.DockerSpawner.environment.update(
            {contract.ENV_HOME_SIZE: settings["JUPYTERHUB_HOME_SIZE"]}
        )
    if settings["JUPYTERHUB_INTERNAL_SSL"] is not False:
        c.JupyterHub.internal_ssl = True
        # the CAs stay in the state volume: servers outlive hub restarts and upgrades
        location = f"{settings['JUPYTERHUB_STATE_DIR']}/internal-ssl"
        c.JupyterHub.internal_certs_location = location
        # names the hub's certificate must carry: the public host (the proxy checks the
        # certificate of what it forwards to against the request's Host header) and the name
        # user servers reach the hub API under
        public = [alt_name(urlsplit(settings["JUPYTERHUB_PUBLIC_URL"]).hostname)]
        connect = settings["JUPYTERHUB_HUB_CONNECT_IP"]
        names = public + ([alt_name(connect)] if connect else [])
        c.JupyterHub.trusted_alt_names = names
        c.OpenBISDockerSpawner.public_alt_names = public
        renew_hub_certificate_without(location, names)
        # a "." never occurs in escaped user ids: no user's home volume has this name; a
        # named server's certificates are its own ({username}--{servername}.certs)
        certs_volume = settings["JUPYTERHUB_VOLUME_PREFIX"] + "{username}{server_suffix}.certs"
        c.DockerSpawner.certs_volume_name = certs_volume


def host_config(settings: Mapping[str, object]) -> dict:
    """Docker's HostConfig additions (docker-py's names) for every user's container."""
    config = {
        "cap_drop": ["ALL"],
        "cap_add": list(settings["JUPYTERHUB_CAP_ADD"]),
        "pids_limit": settings["JUPYTERHUB_PIDS_LIMIT"],
        "read_only": settings["JUPYTERHUB_READ_ONLY_ROOT"],
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={settings['JUPYTERHUB_TMP_SIZE']},mode=1777"},  # noqa: S108
    }
    if settings["JUPYTERHUB_NO_NEW_PRIVILEGES"]:
        config["security_opt"] = ["no-new-privileges:true"]
    # memory + swap = memory: a memory bomb meets the limit instead of swapping the host
    config["memswap_limit"] = settings["JUPYTERHUB_MEM_LIMIT"]
    return config
