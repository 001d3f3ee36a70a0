"""JupyterHub for openBIS, both sides of the hub/user-server boundary in one package.

- ``hub``: runs in the hub (the ``openbis`` authenticator with the ELN's notebook endpoint,
  the openBIS calls, templates, settings, the spawner's configuration);
- ``singleuser``: runs in every user's server (the Jupyter server extension that takes the
  token and writes ELN notebooks, the session hint, ``openbis-data``, the Bash kernel);
- ``contract``: what the two sides agree on (hand-over endpoints, environment names);
- ``validator``, ``logscrub``: name checks and token scrubbing, used on both sides.
"""
