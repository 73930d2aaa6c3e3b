"""A lab's cluster-wide set-up (its CRDs) is installed once, served before learners use it, and
refused in one line to credentials that cannot install it."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from kubelab import api, lab_namespaces, labs
from kubelab.errors import KubelabError
from tests.conftest import Kubectl, token_kubeconfig

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets{suffix}.test.kubelab.dev
spec:
  group: test.kubelab.dev
  scope: Namespaced
  names: {{plural: widgets{suffix}, singular: widget{suffix}, kind: Widget{suffix}}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, properties: {{size: {{type: integer}}}}}}
"""


def _lab(tmp_path: Path, suffix: str) -> labs.Lab:
    folder = tmp_path / "09-widgets"
    (folder / "cluster-setup").mkdir(parents=True)
    (folder / "cluster-setup" / "crd.yaml").write_text(CRD.format(suffix=suffix))
    (folder / "lab.yaml").write_text(
        textwrap.dedent("""\
            id: 09-widgets
            title: Widgets
            namespace: lab-09
            cluster_setup: cluster-setup/
            tasks: [{id: widget, title: A widget, points: 1}]
            """)
    )
    return labs.load(folder / "lab.yaml")


def test_cluster_setup_is_served_when_the_namespace_is_made(
    tmp_path: Path, client: api.Api, kubectl: Kubectl
) -> None:
    suffix = uuid.uuid4().hex[:6]
    lab = _lab(tmp_path, suffix)
    ns = f"t-setup-{suffix}"
    try:
        assert lab_namespaces.ensure(client, lab, ns)
        # Served at once: a custom object can be created right after ensure() returns.
        kubectl(
            "apply", "-n", ns, "-f", "-",
            stdin=f"apiVersion: test.kubelab.dev/v1\nkind: Widget{suffix}\n"
            "metadata: {name: w}\nspec: {size: 3}\n",
        )  # fmt: skip
        assert not lab_namespaces.ensure(client, lab, ns)  # a second call changes nothing
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
        kubectl("delete", "crd", f"widgets{suffix}.test.kubelab.dev", "--wait=false", check=False)


def test_confined_credentials_get_one_line_about_cluster_setup(
    tmp_path: Path, client: api.Api, kubectl: Kubectl, kubeconfig: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    lab = _lab(tmp_path, suffix)
    home = f"t-home-{suffix}"
    kubectl("create", "namespace", home)
    try:
        kubectl("-n", home, "create", "serviceaccount", "learner")
        kubectl(
            "create",
            "clusterrolebinding",
            f"t-ns-maker-{suffix}",
            "--clusterrole=admin",
            f"--serviceaccount={home}:learner",
        )  # fmt: skip  (may make namespaced objects anywhere, but not CRDs)
        kubectl("create", "clusterrole", f"t-ns-create-{suffix}", "--verb=create,get",
                "--resource=namespaces")  # fmt: skip
        kubectl(
            "create", "clusterrolebinding", f"t-ns-create-{suffix}",
            f"--clusterrole=t-ns-create-{suffix}", f"--serviceaccount={home}:learner",
        )  # fmt: skip
        confined = token_kubeconfig(kubectl, home, "learner", tmp_path / "confined.yaml")
        conn = api.Api(confined)
        try:
            with pytest.raises(KubelabError) as err:
                lab_namespaces.ensure(conn, lab, f"t-lab-{suffix}")
        finally:
            conn.close()
        message = str(err.value)
        assert "\n" not in message
        assert "cluster-wide set-up" in message and "kubelab reset 09-widgets" in message
        assert client.get(api.CRDS, f"widgets{suffix}.test.kubelab.dev") is None
    finally:
        for name in (f"t-lab-{suffix}", home):
            kubectl("delete", "namespace", name, "--wait=false", check=False)
        kubectl("delete", "clusterrolebinding", f"t-ns-maker-{suffix}", f"t-ns-create-{suffix}",
                check=False)  # fmt: skip
        kubectl("delete", "clusterrole", f"t-ns-create-{suffix}", check=False)
