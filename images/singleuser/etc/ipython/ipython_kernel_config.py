# Python kernels (also SoS's Python 3 subkernel): an expired openBIS session gets a hint
# on how to refresh it, below pyBIS's own error.
c.InteractiveShellApp.extensions = ["openbis_jupyterhub.singleuser.session_hint"]  # noqa: F821
