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
"""

import asyncio
import io
import ipaddress
import os
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from docker.errors import NotFound
from dockerspawner import DockerSpawner
from traitlets import Float, List, Unicode, default

HOME = "/home/jovyan"
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


def configure(c, settings: Mapping[str, object]) -> None:
    c.DockerSpawner.image = settings["JUPYTERHUB_SINGLEUSER_IMAGE"]
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
        # a "." never occurs in escaped user ids: no user's home volume has this name
        certs_volume = settings["JUPYTERHUB_VOLUME_PREFIX"] + "{username}.certs"
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
