"""kubelab.netpol follows the NetworkPolicy spec: isolation, peers, ports, both directions."""

from __future__ import annotations

from typing import Any

from kubelab.netpol import (
    ContainerPort,
    External,
    Pod,
    Policies,
    pod_from_json,
    policy_types,
)

NS = "shop"
WEB = Pod(NS, {"app": "demo-web"}, "web", (ContainerPort(8080, "http"),))
FRONT = Pod(NS, {"role": "frontend"}, "front")
OTHER = Pod(NS, {"role": "batch"}, "batch")
FAR_FRONT = Pod("elsewhere", {"role": "frontend"}, "far-front")
DNS = Pod("kube-system", {"k8s-app": "kube-dns"}, "coredns")
INTERNET = External("203.0.113.10", "internet")


def policy(name: str, spec: dict[str, Any], namespace: str = NS) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


DENY_ALL = policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
WEB_FROM_FRONT = policy(
    "web-from-front",
    {
        "podSelector": {"matchLabels": {"app": "demo-web"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        ],
    },
)
FRONT_TO_WEB = policy(
    "front-to-web",
    {
        "podSelector": {"matchLabels": {"role": "frontend"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"podSelector": {"matchLabels": {"app": "demo-web"}}}],
                "ports": [{"port": 8080}],
            }
        ],
    },
)
DNS_EGRESS = policy(
    "dns",
    {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        ],
    },
)
LAB = [DENY_ALL, WEB_FROM_FRONT, FRONT_TO_WEB, DNS_EGRESS]


def test_no_policy_allows_everything() -> None:
    p = Policies([])
    assert p.allowed(OTHER, WEB, 9999, "UDP")
    assert p.allowed(WEB, INTERNET, 443)
    assert p.allowed(INTERNET, WEB, 8080)


def test_default_deny_isolates_every_pod_both_ways() -> None:
    p = Policies([DENY_ALL])
    assert not p.allowed(FRONT, WEB, 8080)
    assert not p.allowed(WEB, INTERNET, 443)
    assert not p.allowed(INTERNET, WEB, 8080)
    # Pods of other namespaces are not isolated by this namespace's policy.
    assert p.allowed(FAR_FRONT, DNS, 53, "UDP")
    decision = p.decide(FRONT, WEB, 8080)
    assert "default-deny" in decision.egress and "default-deny" in decision.ingress


def test_the_lab_policies_mean_what_they_should() -> None:
    p = Policies(LAB)
    assert p.allowed(FRONT, WEB, 8080)
    assert not p.allowed(FRONT, WEB, 9090)
    assert not p.allowed(FRONT, WEB, 8080, "UDP")
    assert not p.allowed(OTHER, WEB, 8080)
    assert not p.allowed(FAR_FRONT, WEB, 8080)
    assert not p.allowed(INTERNET, WEB, 8080)
    assert not p.allowed(WEB, FRONT, 8080)
    for pod in (WEB, FRONT, OTHER):
        assert p.allowed(pod, DNS, 53, "UDP") and p.allowed(pod, DNS, 53, "TCP")
        assert not p.allowed(pod, DNS, 80)
        assert not p.allowed(pod, INTERNET, 443)
        assert not p.allowed(pod, External("8.8.8.8"), 53, "UDP")
    # A DNS-labelled pod in another namespace is not kube-system's.
    assert not p.allowed(FRONT, Pod("elsewhere", {"k8s-app": "kube-dns"}), 53, "UDP")
    assert p.decide(FRONT, WEB, 8080).egress == "allowed by front-to-web"


def test_allowances_are_a_union_over_policies() -> None:
    extra = policy(
        "web-from-batch",
        {
            "podSelector": {"matchLabels": {"app": "demo-web"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "batch"}}}]}],
        },
    )
    p = Policies([*LAB, extra])
    assert p.allowed(FRONT, WEB, 8080)
    assert not p.allowed(OTHER, WEB, 8080)  # batch is still egress-isolated by default-deny
    p2 = Policies([WEB_FROM_FRONT, extra])
    assert p2.allowed(OTHER, WEB, 1234)


def test_empty_pod_selector_peer_means_every_pod_of_the_namespace() -> None:
    everyone = policy(
        "web-from-all",
        {
            "podSelector": {"matchLabels": {"app": "demo-web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}],
        },
    )
    p = Policies([everyone])
    assert p.allowed(OTHER, WEB, 8080)
    assert not p.allowed(FAR_FRONT, WEB, 8080)


def test_namespace_selectors_alone_and_with_pod_selectors() -> None:
    any_ns = policy(
        "web-from-any-ns",
        {
            "podSelector": {"matchLabels": {"app": "demo-web"}},
            "ingress": [{"from": [{"namespaceSelector": {}}]}],
        },
    )
    p = Policies([any_ns])
    assert p.allowed(FAR_FRONT, WEB, 8080) and p.allowed(OTHER, WEB, 8080)
    assert not p.allowed(INTERNET, WEB, 8080)
    team = policy(
        "web-from-team-frontends",
        {
            "podSelector": {"matchLabels": {"app": "demo-web"}},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "a"}},
                            "podSelector": {"matchLabels": {"role": "frontend"}},
                        }
                    ]
                }
            ],
        },
    )
    p = Policies([team], {"elsewhere": {"team": "a"}})
    assert p.allowed(FAR_FRONT, WEB, 8080)
    assert not p.allowed(FRONT, WEB, 8080)  # shop has no team=a label
    assert not p.allowed(Pod("elsewhere", {"role": "batch"}), WEB, 8080)


def test_ip_blocks_match_outside_endpoints_with_exceptions() -> None:
    out = policy(
        "out",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
        },
    )
    p = Policies([out])
    assert p.allowed(FRONT, INTERNET, 443)
    assert not p.allowed(FRONT, External("10.1.2.3"), 443)
    assert not p.allowed(FRONT, WEB, 8080)  # an ipBlock never matches a pod here


def test_ports_protocol_default_named_and_ranges() -> None:
    def only(ports: list[dict[str, Any]]) -> Policies:
        return Policies(
            [
                policy(
                    "p",
                    {
                        "podSelector": {"matchLabels": {"app": "demo-web"}},
                        "ingress": [{"ports": ports}],
                    },
                )
            ]
        )

    named = only([{"port": "http"}])
    assert named.allowed(FRONT, WEB, 8080)
    assert not named.allowed(FRONT, WEB, 8081)
    assert not named.allowed(FRONT, WEB, 8080, "UDP")
    ranged = only([{"port": 8000, "endPort": 8100, "protocol": "TCP"}])
    assert ranged.allowed(FRONT, WEB, 8080) and not ranged.allowed(FRONT, WEB, 8101)
    udp_any = only([{"protocol": "UDP"}])
    assert udp_any.allowed(FRONT, WEB, 5353, "UDP") and not udp_any.allowed(FRONT, WEB, 53)


def test_policy_types_default_like_the_api_server() -> None:
    assert policy_types({"spec": {"podSelector": {}}}) == ["Ingress"]
    assert policy_types({"spec": {"egress": [{}]}}) == ["Ingress", "Egress"]
    assert policy_types({"spec": {"egress": []}}) == ["Ingress"]
    assert policy_types({"spec": {"policyTypes": ["Egress"]}}) == ["Egress"]
    # An allow-all egress rule ({}) opens everything for the pods it selects.
    p = Policies([policy("all-out", {"podSelector": {}, "egress": [{}]})])
    assert p.allowed(FRONT, INTERNET, 443) and not p.allowed(INTERNET, FRONT, 80)


def test_matrix_and_pods_from_json() -> None:
    pod = pod_from_json(
        {
            "metadata": {"name": "w", "namespace": NS, "labels": {"app": "demo-web"}},
            "spec": {"containers": [{"ports": [{"containerPort": 8080, "name": "http"}]}]},
        }
    )
    assert pod == Pod(NS, {"app": "demo-web"}, "w", (ContainerPort(8080, "http", "TCP"),))
    grid = Policies(LAB).matrix([FRONT, pod, OTHER], 8080)
    assert grid == [[False, True, False], [False, False, False], [False, False, False]]
    assert Policies([]).matrix([FRONT, OTHER], 80) == [[False, True], [True, False]]


# The lab 06 grader's pure helpers: kind probe pods (not runnable here) and oversized dry-run pods.


def test_kind_probe_pod_is_restricted_and_reads_its_outcome() -> None:
    from kubelab.graders.lab06_rbac_policy import probe_outcome, probe_pod

    pod = probe_pod("p", {"role": "frontend"}, "10.0.0.7", 8080)
    spec = pod["spec"]
    assert pod["metadata"]["labels"]["role"] == "frontend"
    command = spec["containers"][0]["command"]
    assert command[:2] == ["sh", "-c"] and "nc -w 2 10.0.0.7 8080 -e /bin/true" in command[2]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = spec["containers"][0]
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["resources"]["requests"] and spec["restartPolicy"] == "Never"

    def status(phase: str, code: int | None = None) -> dict[str, Any]:
        term = [{"state": {"terminated": {"exitCode": code}}}] if code is not None else []
        return {"status": {"phase": phase, "containerStatuses": term}}

    assert probe_outcome(status("Succeeded", 0)) is True
    assert probe_outcome(status("Failed", 1)) is False
    assert probe_outcome(status("Failed", 137)) is None  # killed: tells nothing about the network
    assert probe_outcome(status("Pending")) is None
    assert probe_outcome(None) is None


def test_oversized_pod_splits_over_containers_within_the_max() -> None:
    from decimal import Decimal

    from kubelab.graders.lab06_rbac_policy import oversized_pod

    pod = oversized_pod("cpu", Decimal("1.8"), Decimal(1), {"memory": "16Mi"})
    containers = pod["spec"]["containers"]
    assert len(containers) == 2
    assert all(c["resources"]["requests"] == {"memory": "16Mi", "cpu": "900m"} for c in containers)
    assert all(c["resources"]["limits"] == c["resources"]["requests"] for c in containers)
    one = oversized_pod("memory", Decimal(3 * 2**30), None, {"cpu": "10m"})
    assert [c["resources"]["requests"]["memory"] for c in one["spec"]["containers"]] == [
        str(3 * 2**30)
    ]
