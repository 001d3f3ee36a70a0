"""Carries the prebuilt JupyterLab extension ``@openbis-jupyterhub/jupyterlab-openbis``.

Its server side is ``openbis_jupyterhub.singleuser.lab_api`` (the hub package), enabled with the
``openbis_jupyterhub.singleuser`` server extension.
"""

__version__ = "0.1.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "@openbis-jupyterhub/jupyterlab-openbis"}]
