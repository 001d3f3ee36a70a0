# The user's server (jupyterhub-singleuser). What is switched off here costs start time or
# memory at every start and gives users nothing in this image (see README, Single-user image).
c = get_config()  # noqa: F821

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
