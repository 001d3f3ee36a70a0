"""User servers on Kubernetes: KubeSpawner settings, one pod and one home PVC per user.

``configure(c, values)`` (``values``: ``settings.read()``) is called, through the spawner table
(``spawners.configure``), from two places and gives the same spawner both times:

- ``hub/jupyterhub_config.py`` with ``JUPYTERHUB_SPAWNER=kubernetes`` (our hub image run on
  its own): the settings come from the environment or their defaults;
- Zero to JupyterHub (``deploy/kubernetes/values.yaml``, ``hub.extraConfig``): the chart's
  ``jupyterhub_config.py`` has already set KubeSpawner from the chart values
  (``singleuser.image``, ``.memory``, ``.cpu``, ``.storage``, ``.cmd``, ...), and those stay.

So for every tunable setting: a value already in the config wins, else the setting's value
(environment variable or default, ``settings.SETTINGS``). Two settings are policy and always
set: the spawner class (``spawners.configure``), and ``delete_pvc = False`` (deleting a hub user
keeps their files).
"""

from collections.abc import Mapping

# where the single-user image (images/singleuser) keeps the user's files, as jovyan 1000:100
HOME = "/home/jovyan"


def configure(c, values: Mapping[str, object]) -> None:
    """Set KubeSpawner's traitlets on the config ``c`` from the settings.

    Used: ``JUPYTERHUB_SINGLEUSER_IMAGE``, ``JUPYTERHUB_MEM_LIMIT``/``_GUARANTEE``,
    ``JUPYTERHUB_CPU_LIMIT``/``_GUARANTEE``, ``JUPYTERHUB_STORAGE_CAPACITY``,
    ``JUPYTERHUB_STORAGE_CLASS`` (default: the cluster's), ``JUPYTERHUB_HUB_CONNECT_IP`` (the
    hub's Service name, as user pods resolve it).
    """
    # A user's files outlive their hub account: deleting a user (admin page, API, a culler
    # with --cull-users) stops the pod but keeps the PVC, so the next sign-in finds them.
    c.KubeSpawner.delete_pvc = False

    def default(name, value):
        if value is not None and name not in c.KubeSpawner and name not in c.Spawner:
            setattr(c.KubeSpawner, name, value)

    default("image", values["JUPYTERHUB_SINGLEUSER_IMAGE"])
    # the image's own start script: it runs the before-notebook.d hooks (openBIS CA, notebook
    # templates) and then jupyterhub-singleuser with the spawner's arguments
    default("cmd", ["start-singleuser.sh"])
    default("uid", 1000)
    default("fs_gid", 100)  # the PVC's files become group 100, writable by jovyan
    default("notebook_dir", HOME)
    default("default_url", "/lab")
    # Pulling the image onto a new node takes a while; answering also may on a busy node.
    default("start_timeout", 300)
    default("http_timeout", 120)

    default("mem_limit", values["JUPYTERHUB_MEM_LIMIT"])
    default("cpu_limit", values["JUPYTERHUB_CPU_LIMIT"])
    default("mem_guarantee", values["JUPYTERHUB_MEM_GUARANTEE"])
    default("cpu_guarantee", values["JUPYTERHUB_CPU_GUARANTEE"])

    # Names. Pinned to KubeSpawner 7's defaults so that an upgrade that changes them cannot
    # detach anyone from their home. The "safe" scheme keeps a user id that is a valid DNS
    # label ("jdoe"); any other ("JDoe", "j.doe@ethz.ch", > 48 characters) becomes a
    # lower-case stem plus "---" and 8 hex digits of its sha256, so ids differing only in
    # case get different pods and PVCs. A PVC's name is also kept in the spawner's state.
    default("slug_scheme", "safe")
    default("pod_name_template", "jupyter-{user_server}")
    default("pvc_name_template", "claim-{user_server}")
    default("remember_pvc_name", True)

    # Storage: one dynamically provisioned PVC per user, mounted as the home directory
    # (what the chart does for singleuser.storage.type=dynamic, with the same names).
    default("storage_pvc_ensure", True)
    default("storage_capacity", values["JUPYTERHUB_STORAGE_CAPACITY"])
    default("storage_class", values["JUPYTERHUB_STORAGE_CLASS"])
    volume = "volume-{user_server}"
    default(
        "volumes",
        {volume: {"name": volume, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}},
    )
    default("volume_mounts", {volume: {"name": volume, "mountPath": HOME}})

    # User pods reach the hub API through the hub's Service (the chart sets hub_connect_url).
    connect_ip = values["JUPYTERHUB_HUB_CONNECT_IP"]
    if connect_ip and not {"hub_connect_ip", "hub_connect_url"} & set(c.JupyterHub):
        c.JupyterHub.hub_connect_ip = connect_ip
