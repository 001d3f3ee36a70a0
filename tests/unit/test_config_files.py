"""hub/jupyterhub_config.py as JupyterHub loads it: the settings, the spawner's module, and an
admin's site overrides in JUPYTERHUB_CONFIG_D applied last. And every script's --help."""

import subprocess
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parents[2]


def load(monkeypatch, tmp_path, **env):
    for name, value in {"OPENBIS_URL": "https://openbis.example.org", **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JUPYTERHUB_CONFIG_D", str(tmp_path))
    return PyFileConfigLoader("jupyterhub_config.py", str(REPO / "hub")).load_config()


def test_the_environment_becomes_traitlets(monkeypatch, tmp_path):
    c = load(monkeypatch, tmp_path, JUPYTERHUB_SINGLEUSER_IMAGE="site/singleuser:1")
    assert c.JupyterHub.authenticator_class == "openbis"
    assert c.OpenBISAuthenticator.openbis_url == "https://openbis.example.org"
    assert c.JupyterHub.spawner_class == "openbis_jupyterhub.hub.docker.OpenBISDockerSpawner"
    assert c.DockerSpawner.image == "site/singleuser:1"
    assert "extra_handlers" not in c.JupyterHub  # the authenticator registers the endpoint


def test_site_overrides_are_loaded_last_in_name_order(monkeypatch, tmp_path):
    (tmp_path / "20-b.py").write_text("c.Spawner.start_timeout = 600\n")
    (tmp_path / "10-a.py").write_text(
        "c.Spawner.start_timeout = 1\nc.Spawner.mem_guarantee = '1G'\n"
    )
    (tmp_path / "notes.txt").write_text("c.Spawner.start_timeout = 2\n")
    c = load(monkeypatch, tmp_path)
    assert c.Spawner.start_timeout == 600  # over our 180, and over 10-a.py
    assert c.Spawner.mem_guarantee == "1G"


def test_kubernetes_is_one_setting_away(monkeypatch, tmp_path):
    c = load(monkeypatch, tmp_path, JUPYTERHUB_SPAWNER="kubernetes")
    assert c.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    assert c.KubeSpawner.delete_pvc is False


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (REPO / "scripts").iterdir() if p.stat().st_mode & 0o111)
)
def test_every_script_explains_itself(script):
    result = subprocess.run(
        [str(REPO / "scripts" / script), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert result.stdout.startswith(f"Usage: scripts/{script}")
