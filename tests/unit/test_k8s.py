"""The Kubernetes manifests: rendered from the services table, valid against the Kubernetes
schemas offline, and holding what every service needs (probes, requests, workers, config)."""

from __future__ import annotations

import copy

import yaml

from shared import k8s


def test_the_rendered_base_is_up_to_date_and_every_overlay_is_valid() -> None:
    assert k8s.check() == 0


def test_every_service_in_the_table_gets_a_deployment_service_and_budget() -> None:
    table = yaml.safe_load((k8s.K8S / "services.yaml").read_text())["services"]
    objects = k8s.render(k8s.K8S / "overlays" / "production")
    for name in table:
        kinds = {o["kind"] for o in objects if o["metadata"]["name"] == f"kehu-{name}"}
        assert kinds == {"Deployment", "Service", "PodDisruptionBudget"}, name
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert {d["spec"]["replicas"] for d in deployments} == {3}
    assert all(d["metadata"]["namespace"] == "kehu" for d in deployments)
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in deployments}
    assert images == {"registry.example.com/kehu:1.0.0"}


def test_adding_a_service_is_one_entry() -> None:
    objects = k8s.service_objects("loyalty", {"workers": 2, "cpu": "500m", "memory": "256Mi"})
    assert k8s.validate(objects) == []
    assert k8s.rules([*objects, *k8s.render(k8s.K8S / "base")]) == []


def test_schema_errors_and_missing_probes_are_reported() -> None:
    objects = k8s.render(k8s.K8S / "base")
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    broken["spec"]["replicas"] = "three"
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    assert len(k8s.validate([broken])) == 1
    container = broken["spec"]["template"]["spec"]["containers"][0]
    del container["readinessProbe"]
    container["env"] = [e for e in container["env"] if e["name"] != "KEHU_WORKERS"]
    problems = k8s.rules([broken, *[o for o in objects if o["kind"] != "Deployment"]])
    assert any("readiness probe" in p for p in problems)
    assert any("KEHU_WORKERS" in p for p in problems)


def test_a_key_in_the_manifests_is_refused() -> None:
    objects = k8s.render(k8s.K8S / "base")
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    config["data"]["KEHU_JWT_SECRET"] = "x" * 48
    assert any("keys in the manifests" in p for p in k8s.rules(objects))
