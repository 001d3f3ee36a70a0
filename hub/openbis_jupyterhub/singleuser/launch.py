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
import sys
import types

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


def one_ssl_context_per_certificate():
    """``HubAuth``'s requests to the hub reuse the SSL context of their certificate files."""
    from jupyterhub.services import auth

    auth.make_ssl_context = functools.lru_cache(auth.make_ssl_context)


def main():
    without_hub_code()
    one_ssl_context_per_certificate()
    from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main()


if __name__ == "__main__":
    sys.exit(main())
