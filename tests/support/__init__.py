"""What tests and benchmarks share: start a hub, a stack, the openBIS double; talk to them.

Test modules (``tests/test_*.py``, ``tests/unit/``) and benchmarks (``benchmarks/``) import
from here, never from each other; ``tests/conftest.py`` holds the pytest fixtures only.

- ``processes``: a free port, stopping a child process
- ``images``: our images' names for this run (``TEST_IMAGE_TAG``), building them, the admin's
  environment, the ``docker`` CLI
- ``double``: the openBIS double as a subprocess
- ``hubprocess``: a real JupyterHub process with our configuration and the local spawner
- ``lab``: a local JupyterLab with our server extension (no hub, no Docker)
- ``compose_stack``, ``swarm_cluster``, ``swarm_stack``: the compose stack; Docker Swarm
- ``slurm_cluster``: a two-node Slurm cluster, the hub's venv, the Charliecloud image
- ``eln``: the ELN's requests and notebooks; ``jupyter_api``: kernels over the REST API
- ``browser``: Chromium's arguments, network changes; ``attacks``: the hostile notebook
- ``singleuser``: a stand-in for the hub beside one single-user container
- ``spawner_manifests``, ``install_helm``: the Kubernetes tests' helpers
- ``spawner_requests``: the Docker API requests DockerSpawner makes, recorded
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
