# The user's server (jupyterhub-singleuser). What is switched off here costs start time or
# memory at every start and gives users nothing in this image (see docs/admin-guide.md,
# Single-user image); then caching and compression of what the server sends a browser
# (docs/admin-guide.md, "Speed").
# jupyter_server reads this file; its jupyter_server_config.d/ only enables extensions.
import glob
import os

from jupyter_core.paths import jupyter_path

c = get_config()  # noqa: F821 (provided by jupyter_server)

c.ServerApp.root_dir = "/home/jovyan"
c.ServerApp.default_url = "/lab"
c.ServerApp.jpserver_extensions = {
    # the language-server bridge: the image has no language servers to bridge to
    "jupyter_lsp": False,
    # classic Notebook 6 configuration and nbextensions, which Notebook 7 does not use
    "notebook_shim": False,
}
# No extension installs from PyPI (the venv is read-only for users), no news feed and no
# update check fetched from the internet.
c.LabApp.extension_manager = "readonly"
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"

# gzip for pages, scripts, styles and API answers (text, JSON, JavaScript, SVG)
c.ServerApp.tornado_settings = {"compress_response": True}

# The lab extensions' files (static/ below each extension: webpack names them by content hash)
# are for good in the browser's cache. JupyterLab marks them so, but by a path without the
# server's base URL, which under JupyterHub (/user/<name>/) never matches: the browser would
# ask again for each of them on every page load.
prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
c.ServerApp.static_immutable_cache = [
    f"{prefix}lab/extensions/{os.path.relpath(static, root)}/"
    for root in jupyter_path("labextensions")
    for static in glob.glob(f"{root}/**/static", recursive=True)
]

# A notebook the ELN writes has its kernel started at once, before the browser asks for it
# (hub/openbis_jupyterhub/singleuser/sessions.py)
c.ServerApp.session_manager_class = "openbis_jupyterhub.singleuser.sessions.OpenBISSessionManager"
