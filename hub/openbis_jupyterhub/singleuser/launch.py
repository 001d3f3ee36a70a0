"""``openbis-singleuser``: JupyterHub's ``jupyterhub-singleuser``, without the hub's own code.

``jupyterhub-singleuser`` imports ``jupyterhub.log`` for its request log, and that module
imports the hub's page handlers (``jupyterhub.handlers.pages``) for one class,
``HealthCheckHandler``, whose requests it logs quietly. Through them, and through
``jupyterhub.scopes`` (which ``jupyterhub.services.auth`` imports for one function), comes the
hub's database layer: ``jupyterhub.orm``, SQLAlchemy's ORM, Alembic, Mako. A user's server
never runs any of it, yet it cost every idle server about 21 MiB of memory and every start
about 0.2 s of imports (issue 14; ``benchmarks.singleuser`` measures both). SQLAlchemy's core
stays: ``jupyterhub.utils`` takes an exception class from it.

So, before JupyterHub's code is imported:

- ``jupyterhub.handlers.pages`` is a module with only ``HealthCheckHandler``: a user's server
  has no such handler, so ``jupyterhub.log`` logs every request as it did;
- ``jupyterhub.orm`` and ``jupyterhub.roles`` load when first used
  (``importlib.util.LazyLoader``) instead of when ``jupyterhub.scopes`` is imported: only the
  hub's side of ``jupyterhub.scopes`` uses them.

Everything else is ``jupyterhub.singleuser.main``, unchanged. Upstream's own fix would be
lazy imports in ``jupyterhub.log`` and ``jupyterhub.scopes``; when JupyterHub changes what
``jupyterhub.log`` takes from the page handlers, the server fails to start with an
ImportError naming it (tests/test_singleuser_image.py starts it).

A server started as a batch job (``JUPYTERHUB_SPAWNER=slurm``, batchspawner) does not know
its port in advance: the hub gives it port 0 in ``JUPYTERHUB_SERVICE_URL``. Then the launcher
does what batchspawner's own wrapper ``batchspawner-singleuser`` does (which cannot come first
here: it imports all of JupyterHub): it picks a free port, tells the hub
(``POST {JUPYTERHUB_API_URL}/batchspawner {"port": N}``, batchspawner's API, with the server's
own API token) and puts the port into ``JUPYTERHUB_SERVICE_URL``. tests/unit/
test_singleuser_parts.py checks that this is still the request batchspawner's wrapper makes.

With internal TLS, the server's requests to the hub API (``HubAuth``: the OAuth code exchange
and the user look-up of every sign-in, each token check it has not cached) go out with one SSL
context per certificate, made on first use. JupyterHub makes a new one for each request, which
loads the system's CAs and the server's key every time: ~40 ms per request on a busy two-core
host, two of them in every sign-in (issue 23; ``benchmarks.compose_journey`` shows it). The
context is the same either way (the same files, which stay as they are for the server's life:
DockerSpawner mounts them read-only at its start); only the loading goes. Upstream's own fix
would be a cached context in ``HubAuth``, as ``jupyterhub.singleuser``'s own client to the hub
already has (``hub_http_client_opts``).
"""

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import socket
import sys
import types
import urllib.request
from urllib.parse import urlsplit, urlunsplit

LAZY = frozenset({"jupyterhub.orm", "jupyterhub.roles"})
PAGES = "jupyterhub.handlers.pages"


class LazyHubModules(importlib.abc.MetaPathFinder):
    """Finds the modules in LAZY as the path finder does, with a loader that runs them on
    their first attribute access."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in LAZY:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


class HealthCheckHandler:
    """Stands for the hub's health-check handler, which never serves a user's server."""


def without_hub_code():
    """Arranges the imports above; call it before anything imports ``jupyterhub``."""
    if "jupyterhub" in sys.modules:
        raise RuntimeError("openbis-singleuser: jupyterhub was imported before the launcher")
    pages = types.ModuleType(PAGES, "The hub's page handlers, as a user's server sees them.")
    pages.HealthCheckHandler = HealthCheckHandler
    sys.modules[PAGES] = pages
    sys.meta_path.insert(0, LazyHubModules())


def report_port(environ=os.environ) -> int | None:
    """A port for a server whose ``JUPYTERHUB_SERVICE_URL`` has port 0 (a batch job's):
    picked, told to the hub and written into ``JUPYTERHUB_SERVICE_URL``. None for any other."""
    url = urlsplit(environ.get("JUPYTERHUB_SERVICE_URL", ""))
    if url.port != 0:
        return None
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    request = urllib.request.Request(  # noqa: S310 (the hub's own URL, from the hub)
        environ["JUPYTERHUB_API_URL"].rstrip("/") + "/batchspawner",
        data=json.dumps({"port": port}).encode(),
        headers={
            "Authorization": f"token {environ['JUPYTERHUB_API_TOKEN']}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass
    environ["JUPYTERHUB_SERVICE_URL"] = urlunsplit(url._replace(netloc=f"{url.hostname}:{port}"))
    return port


def one_ssl_context_per_certificate():
    """``HubAuth``'s requests to the hub reuse the SSL context of their certificate files."""
    from jupyterhub.services import auth

    auth.make_ssl_context = functools.lru_cache(auth.make_ssl_context)


def main():
    report_port()
    without_hub_code()
    one_ssl_context_per_certificate()
    from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main()


if __name__ == "__main__":
    sys.exit(main())
