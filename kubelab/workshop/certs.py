"""Participants' user certificates, signed by the cluster itself through the CSR API.

A key and a certificate request are made locally with the `cryptography` package (no `openssl`
binary, so the same on every platform); the request goes to the API
server as a CertificateSigningRequest for the `kubernetes.io/kube-apiserver-client` signer, the
leader's credentials approve it, and kube-controller-manager signs it with the cluster CA. The
same steps work on kind (kubeadm gives kube-controller-manager the CA) and on sim (kubelab passes
kwokctl's CA to it). The private key never leaves this machine except inside the kubeconfig.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubelab import api, wait
from kubelab.errors import KubelabError
from kubelab.i18n import _

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


def key_and_request(user: str, group: str) -> tuple[bytes, bytes]:
    """Make a P-256 private key and a certificate request for `user` in `group` (both PEM).

    The subject is O=group, CN=user: the API server reads the user name from CN and the group
    from O. The key is written as OpenSSL's own EC format ("EC PRIVATE KEY"), as `openssl ecparam`
    wrote it, which every kubeconfig reader takes.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
            x509.NameAttribute(NameOID.COMMON_NAME, user),
        ]
    )
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, request.public_bytes(serialization.Encoding.PEM)


def still_valid(certificate: bytes, seconds: float) -> bool:
    """Tell whether a PEM certificate is still valid `seconds` from now (False if unreadable)."""
    try:
        cert = x509.load_pem_x509_certificate(certificate)
    except ValueError:
        return False
    return cert.not_valid_after_utc > datetime.now(timezone.utc) + timedelta(seconds=seconds)


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
            _(
                "the cluster did not sign certificate request {name} within {seconds}s:"
                " kube-controller-manager needs the cluster CA (--cluster-signing-cert-file); a"
                " sim cluster started by an older kubelab lacks it: `kubelab cluster down`, then"
                " `up`"
            ).format(name=name, seconds=f"{SIGN_TIMEOUT:.0f}")
        ) from err
    status = (signed or {}).get("status") or {}
    if not status.get("certificate"):
        why = [c.get("message") or c.get("reason") for c in status.get("conditions") or []]
        raise KubelabError(
            _("certificate request {name} was not signed: {why}").format(
                name=name, why="; ".join(map(str, why)) or _("deleted")
            )
        )
    return Credential(base64.b64decode(status["certificate"]), key)
