"""Participants' user certificates, signed by the cluster itself through the CSR API.

A key and a certificate request are made locally with `openssl`; the request goes to the API
server as a CertificateSigningRequest for the `kubernetes.io/kube-apiserver-client` signer, the
leader's credentials approve it, and kube-controller-manager signs it with the cluster CA. The
same steps work on kind (kubeadm gives kube-controller-manager the CA) and on sim (kubelab passes
kwokctl's CA to it). The private key never leaves this machine except inside the kubeconfig.
"""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubelab import api, tools, wait
from kubelab.errors import KubelabError

CSRS = api.Resource(
    "certificates.k8s.io/v1",
    "certificatesigningrequests",
    "CertificateSigningRequest",
    namespaced=False,
)
SIGNER = "kubernetes.io/kube-apiserver-client"
VALID_FOR = 7 * 24 * 3600  # seconds: a workshop, with days to spare, not a standing credential
SIGN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credential:
    """A signed client certificate and its private key, both PEM."""

    certificate: bytes
    key: bytes

    def kubeconfig_user(self) -> dict[str, str]:
        """Return the `user` entry of a kubeconfig that authenticates with this credential."""
        return {
            "client-certificate-data": base64.b64encode(self.certificate).decode(),
            "client-key-data": base64.b64encode(self.key).decode(),
        }


def _openssl() -> Path:
    return tools.require("openssl", "to make participants' keys and certificate requests")


def key_and_request(user: str, group: str) -> tuple[bytes, bytes]:
    """Make a P-256 private key and a certificate request for `user` in `group` (both PEM)."""
    openssl = _openssl()
    with tempfile.TemporaryDirectory(prefix="kubelab-key-") as tmp:
        key_file = Path(tmp) / "key.pem"
        # Two steps, not `req -newkey ec ...`: these forms work in OpenSSL 1.x and 3.x and in
        # macOS's LibreSSL alike.
        tools.run(
            [openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key_file],
            timeout=30,
            what="openssl ecparam",
        )
        proc = tools.run(
            [openssl, "req", "-new", "-key", key_file, "-subj", f"/O={group}/CN={user}"],
            timeout=30,
            what="openssl req",
        )
        return key_file.read_bytes(), proc.stdout.encode()


def still_valid(certificate: bytes, seconds: float) -> bool:
    """Tell whether a PEM certificate is still valid `seconds` from now."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as pem:
        pem.write(certificate)
        pem.flush()
        proc = tools.run(
            [_openssl(), "x509", "-noout", "-checkend", str(int(seconds)), "-in", pem.name],
            check=False,
            timeout=30,
            what="openssl x509",
        )
    return proc.returncode == 0


def _issued(obj: api.Json | None) -> bool:
    if obj is None:
        return True  # deleted meanwhile: reported below
    status = obj.get("status") or {}
    refused = [c for c in status.get("conditions") or [] if c.get("type") in ("Denied", "Failed")]
    return bool(status.get("certificate") or refused)


def mint(
    client: api.Api, name: str, user: str, group: str, *, labels: dict[str, str]
) -> Credential:
    """Have the cluster sign a new certificate for `user`, through CSR `name` (replaced if it
    exists: its key is lost), approved with `client`'s credentials."""
    key, request = key_and_request(user, group)
    client.delete(CSRS, name)  # an earlier one cannot be reused: its key was never kept
    body = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "request": base64.b64encode(request).decode(),
            "signerName": SIGNER,
            "expirationSeconds": VALID_FOR,
            "usages": ["client auth"],
        },
    }
    created = client.create(CSRS, body)
    created.setdefault("status", {})["conditions"] = [
        {
            "type": "Approved",
            "status": "True",
            "reason": "KubelabWorkshop",
            "message": "approved by `kubelab workshop up` for a workshop participant",
        }
    ]
    client.request("PUT", CSRS.path(None, name) + "/approval", body=created)
    try:
        signed = wait.until(
            lambda: client.get(CSRS, name),
            _issued,
            timeout=SIGN_TIMEOUT,
            interval=0.1,
            what=f"certificate for {user}",
        )
    except wait.Timeout as err:
        raise KubelabError(
            f"the cluster did not sign certificate request {name} within {SIGN_TIMEOUT:.0f}s: "
            "kube-controller-manager needs the cluster CA (--cluster-signing-cert-file); a sim "
            "cluster started by an older kubelab lacks it: `kubelab cluster down`, then `up`"
        ) from err
    status = (signed or {}).get("status") or {}
    if not status.get("certificate"):
        why = [c.get("message") or c.get("reason") for c in status.get("conditions") or []]
        raise KubelabError(
            f"certificate request {name} was not signed: {'; '.join(map(str, why)) or 'deleted'}"
        )
    return Credential(base64.b64decode(status["certificate"]), key)
