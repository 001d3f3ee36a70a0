"""JupyterHub for openBIS: authenticator, ELN notebook endpoint, token hand-over to user servers.

Modules: ``auth`` (the Authenticator, entry point ``openbis``), ``openbis`` (the openBIS
calls the hub makes), ``validator`` (folder and file name checks), ``singleuser`` (server
extension inside each user's server), ``data_cli`` (``openbis-data`` for Bash, R, Octave).
"""
