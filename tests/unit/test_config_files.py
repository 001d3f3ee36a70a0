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
    assert c.JupyterHub.spawner_class == "openbis-docker"  # spawners.py
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


def test_users_are_kept_apart_by_internal_ssl_on_compose(monkeypatch, tmp_path):
    c = load(
        monkeypatch, tmp_path, JUPYTERHUB_HUB_CONNECT_IP="hub",
        JUPYTERHUB_PUBLIC_URL="https://jupyter.example.org:8443/", JUPYTERHUB_STATE_DIR="/srv/x",
    )  # fmt: skip
    assert c.JupyterHub.internal_ssl is True
    assert c.JupyterHub.internal_certs_location == "/srv/x/internal-ssl"
    # the hub's certificate: its public name (the proxy checks it against the Host header)
    # and the name user servers reach it under; servers' certificates: the public name
    assert c.JupyterHub.trusted_alt_names == ["DNS:jupyter.example.org", "DNS:hub"]
    assert c.OpenBISDockerSpawner.public_alt_names == ["DNS:jupyter.example.org"]
    assert c.DockerSpawner.certs_volume_name == "jupyterhub-user-{username}.certs"
    # the idle culler reaches the hub API with the hub's internal certificate
    (culler,) = [s for s in c.JupyterHub.services.get_value([]) if s["name"] == "idle-culler"]
    assert culler["command"][-2:] == [
        "--ssl-enabled=true",
        "--internal-certs-location=/srv/x/internal-ssl",
    ]
    c = load(monkeypatch, tmp_path, JUPYTERHUB_INTERNAL_SSL="false")
    assert "internal_ssl" not in c.JupyterHub


def test_a_new_public_name_renews_the_hubs_internal_certificate(tmp_path):
    from certipy import Certipy
    from openbis_jupyterhub.hub import docker

    store = Certipy(store_dir=str(tmp_path))
    store.create_ca("hub-ca")
    store.create_signed_pair("hub-internal", "hub-ca", alt_names=["DNS:hub", "IP:10.0.0.5"])
    cert = tmp_path / "hub-internal" / "hub-internal.crt"
    docker.renew_hub_certificate_without(str(tmp_path), ["DNS:hub", "IP:10.0.0.5"])
    assert cert.exists()  # still right: kept
    docker.renew_hub_certificate_without(str(tmp_path), ["DNS:jupyter.example.org", "DNS:hub"])
    assert not cert.exists()  # JupyterHub makes a new one, signed by the same CA
    assert "hub-internal" not in Certipy(store_dir=str(tmp_path)).store.store
    assert (tmp_path / "hub-ca" / "hub-ca.crt").exists()
    assert docker.alt_name("10.0.0.5") == "IP:10.0.0.5" and docker.alt_name("a.b") == "DNS:a.b"


@pytest.mark.parametrize("spawner", ["swarm", "kubernetes"])
def test_internal_ssl_is_refused_where_it_cannot_work(monkeypatch, tmp_path, spawner):
    c = load(monkeypatch, tmp_path, JUPYTERHUB_SPAWNER=spawner)
    assert "internal_ssl" not in c.JupyterHub
    with pytest.raises(Exception, match="JUPYTERHUB_INTERNAL_SSL=true needs DockerSpawner"):
        load(monkeypatch, tmp_path, JUPYTERHUB_SPAWNER=spawner, JUPYTERHUB_INTERNAL_SSL="true")


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
