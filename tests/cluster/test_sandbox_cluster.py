"""The grading sandbox against the sim cluster: a learner's ServiceAccount reaches the API server
through the relay (TLS untouched), and RBAC, not the sandbox, decides what it may do."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import yaml

from kubelab import sandbox
from tests.conftest import Kubectl, token_kubeconfig


def self_contained(config: Path) -> str:
    """Inline the CA file `config` points to (files outside are not in the sandbox); return the
    server URL."""
    data = yaml.safe_load(config.read_text())
    cluster = data["clusters"][0]["cluster"]
    ca = Path(cluster.pop("certificate-authority")).read_bytes()
    cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    config.write_text(yaml.safe_dump(data))
    return str(cluster["server"])


def test_kubectl_in_the_sandbox_works_as_the_learner_only(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "learner")
    kubectl(
        "-n", namespace, "create", "rolebinding", "learner-edit",
        "--clusterrole=edit", f"--serviceaccount={namespace}:learner",
    )  # fmt: skip
    kubectl("-n", namespace, "create", "configmap", "hello", "--from-literal=a=b")
    config = token_kubeconfig(kubectl, namespace, "learner", tmp_path / "learner.kubeconfig")
    server = self_contained(config)
    work = tmp_path / "work"
    work.mkdir()

    def inside(*argv: str) -> sandbox.Outcome:
        return sandbox.run(
            list(argv),
            workdir=work,
            api_server=server,
            env=sandbox.base_env(KUBECONFIG=sandbox.KUBECONFIG, KUBELAB_NAMESPACE=namespace),
            ro_files={sandbox.KUBECONFIG: config},
            limits=sandbox.Limits(wall_seconds=30),
        )

    listed = inside("kubectl", "get", "configmaps", "-n", namespace, "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert "configmap/hello" in listed.stdout
    pods = inside("kubectl", "get", "pods", "-n", namespace)
    assert pods.returncode == 0, pods.stderr
    secrets = inside("kubectl", "get", "secrets", "-n", "kube-system")
    assert secrets.returncode != 0
    assert "Forbidden" in secrets.stderr
    binding = inside(
        "kubectl", "create", "clusterrolebinding", "pwn",
        "--clusterrole=cluster-admin", f"--serviceaccount={namespace}:learner",
    )  # fmt: skip
    assert binding.returncode != 0 and "forbidden" in binding.stderr.lower()
    assert kubectl("get", "clusterrolebinding", "pwn", check=False).returncode != 0
    imported = inside(sys.executable, "-c", "import kubelab.graders, kubernetes; print('ok')")
    assert imported.stdout == "ok\n", imported.stderr
