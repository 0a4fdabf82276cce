"""The Kubernetes manifests in deploy/kubernetes: rendered from one table, validated offline.

    python -m shared.k8s write               # base/services.yaml from services.yaml
    python -m shared.k8s check               # up to date, renders, valid (`make lint`)
    python -m shared.k8s render overlays/production   # the manifests, for kubectl apply -f -

`deploy/kubernetes/services.yaml` has one entry per service; `write` turns each into a
Deployment (probes on /health/*, resource requests, `KEHU_WORKERS`, config from the
`kehu-config` ConfigMap and the `kehu-secrets` Secret), a Service and a PodDisruptionBudget.

`render` is the subset of kustomize these manifests use (resources, namespace, labels, images,
JSON 6902 and strategic-merge patches with targets), so no kustomize binary is needed; the
output is what `kubectl kustomize` gives (where kubectl is installed, `check` compares them).
`check` validates every rendered object against the Kubernetes OpenAPI schemas shipped in the
`kubernetes-validate` package (strict: unknown fields are errors), offline.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
GENERATED = K8S / "base" / "services.yaml"
KUBERNETES_VERSION = "1.33.0"
PORT = 8000

# -- the per-service objects ------------------------------------------------------------------


def service_objects(name: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The Deployment, Service and PodDisruptionBudget of one service."""
    app = f"kehu-{name}"
    selector = {"app.kubernetes.io/name": "kehu", "app.kubernetes.io/component": name}
    probe = {"httpGet": {"path": "/health/live", "port": "http"}, "periodSeconds": 10}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": dict(selector)},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "selector": {"matchLabels": dict(selector)},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": dict(selector)},
                "spec": {
                    "terminationGracePeriodSeconds": 45,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": dict(selector)},
                        }
                    ],
                    "containers": [
                        {
                            "name": name,
                            "image": "kehu:latest",
                            "ports": [{"name": "http", "containerPort": PORT}],
                            "env": [
                                {"name": "KEHU_SERVICE", "value": name},
                                {"name": "PORT", "value": str(PORT)},
                                {"name": "KEHU_WORKERS", "value": str(spec.get("workers", 1))},
                                {
                                    "name": "PROMETHEUS_MULTIPROC_DIR",
                                    "value": "/tmp/kehu-metrics",
                                },
                            ],
                            "envFrom": [
                                {"configMapRef": {"name": "kehu-config"}},
                                {"secretRef": {"name": "kehu-secrets"}},
                            ],
                            "resources": {
                                "requests": {"cpu": spec["cpu"], "memory": spec["memory"]},
                                "limits": {"memory": spec["memory"]},
                            },
                            # Ready: database, broker and consumers pass (GET /health/ready).
                            "readinessProbe": {
                                "httpGet": {"path": "/health/ready", "port": "http"},
                                "periodSeconds": 10,
                                "timeoutSeconds": 5,
                                "failureThreshold": 3,
                            },
                            # Alive: the process answers; never restarted for a dependency.
                            "livenessProbe": {**probe, "timeoutSeconds": 3, "failureThreshold": 6},
                            "startupProbe": {**probe, "failureThreshold": 30},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "labels": dict(selector)},
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http"}],
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": app, "labels": dict(selector)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(selector)}},
    }
    return [deployment, service, budget]


def generated_text() -> str:
    table = yaml.safe_load((K8S / "services.yaml").read_text())["services"]
    header = (
        "# Rendered by `make k8s` (python -m shared.k8s write) from ../services.yaml: edit that.\n"
    )
    objects = [obj for name, spec in table.items() for obj in service_objects(name, spec)]
    return header + yaml.safe_dump_all(objects, sort_keys=False)


# -- the kustomize subset ---------------------------------------------------------------------


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _matches(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    meta = obj.get("metadata", {})
    if "kind" in target and obj.get("kind") != target["kind"]:
        return False
    if "name" in target and meta.get("name") != target["name"]:
        return False
    for pair in filter(None, (target.get("labelSelector") or "").split(",")):
        key, _, value = pair.partition("=")
        if meta.get("labels", {}).get(key.strip()) != value.strip():
            return False
    return True


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _apply_json6902(obj: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if op["op"] in ("add", "replace"):
            if isinstance(node, list):
                index = len(node) if last == "-" else int(last)
                if op["op"] == "add":
                    node.insert(index, copy.deepcopy(op["value"]))
                else:
                    node[index] = copy.deepcopy(op["value"])
            else:
                if op["op"] == "replace" and last not in node:
                    raise KeyError(f"replace of missing {op['path']}")
                node[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            if isinstance(node, list):
                del node[int(last)]
            else:
                del node[last]
        else:
            raise ValueError(f"unsupported patch op {op['op']!r}")


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge, as far as these manifests need: maps merge, lists of named maps merge
    by name, other lists and values are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in base + patch)
    ):
        merged = {x["name"]: x for x in base}
        for item in patch:
            merged[item["name"]] = _merge(merged.get(item["name"], {}), item)
        return list(merged.values())
    return copy.deepcopy(patch)


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize directory` gives, for the features used here."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        objects += render(path) if path.is_dir() else _documents(path)
    for patch in kustomization.get("patches", []):
        body = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
        content = yaml.safe_load(body)
        target = patch.get("target") or {
            "kind": content["kind"],
            "name": content["metadata"]["name"],
        }
        hits = [o for o in objects if _matches(o, target)]
        if not hits:
            raise ValueError(f"{directory}: patch target {target} matches nothing")
        for obj in hits:
            if isinstance(content, list):
                _apply_json6902(obj, content)
            else:
                obj.update(_merge(obj, content))
    for entry in kustomization.get("labels", []):
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
            template = obj.get("spec", {}).get("template")
            if entry.get("includeTemplates") and template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for image in kustomization.get("images", []):
        for container in _containers(objects):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] != "Namespace":
                obj["metadata"]["namespace"] = namespace
    return objects


def _containers(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        template = obj.get("spec", {}).get("template", {})
        yield from template.get("spec", {}).get("containers", [])
        yield from template.get("spec", {}).get("initContainers", [])


# -- checks -----------------------------------------------------------------------------------


def validate(objects: list[dict[str, Any]]) -> list[str]:
    """Schema errors of the objects (strict: unknown fields count), offline."""
    import kubernetes_validate

    errors = []
    for obj in objects:
        label = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{label}: {exc.message} at {'/'.join(map(str, exc.path))}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{label}: no schema ({exc})")
    return errors


def rules(objects: list[dict[str, Any]]) -> list[str]:
    """What the issue asks of every service's Deployment, checked on the rendered output."""
    problems = []
    config = {o["metadata"]["name"]: o for o in objects if o["kind"] in ("ConfigMap", "Secret")}
    for obj in objects:
        text = yaml.safe_dump(obj).lower()
        if obj["kind"] == "Secret" or any(
            k in text for k in ("kehu_jwt_secret:", "kehu_encryption_keys:", "blind_index_key:")
        ):
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: keys in the manifests")
        if obj["kind"] != "Deployment":
            continue
        name = obj["metadata"]["name"]
        for container in obj["spec"]["template"]["spec"]["containers"]:
            env = {e["name"] for e in container.get("env", [])}
            refs = {
                (r.get("configMapRef") or r.get("secretRef") or {}).get("name")
                for r in container.get("envFrom", [])
            }
            checks = {
                "readiness probe on /health/ready": container.get("readinessProbe", {})
                .get("httpGet", {})
                .get("path")
                == "/health/ready",
                "liveness probe on /health/live": container.get("livenessProbe", {})
                .get("httpGet", {})
                .get("path")
                == "/health/live",
                "cpu and memory requests": {"cpu", "memory"}
                <= set(container.get("resources", {}).get("requests", {})),
                "KEHU_WORKERS": "KEHU_WORKERS" in env,
                "config from the ConfigMap and the Secret": {"kehu-config", "kehu-secrets"} <= refs,
            }
            problems += [f"Deployment/{name}: no {what}" for what, ok in checks.items() if not ok]
    if "kehu-config" not in config:
        problems.append("no kehu-config ConfigMap")
    if not any(o["kind"] == "Job" for o in objects):
        problems.append("no migrations Job")
    return problems


def overlays() -> list[Path]:
    return [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]


def _compare_with_kubectl(directory: Path, objects: list[dict[str, Any]]) -> list[str]:
    """Where `kubectl` is installed, its `kustomize` must render what `render` does."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return []
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return [f"kubectl kustomize failed: {out.stderr.strip()}"]
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}
    ours = {(d["kind"], d["metadata"]["name"]): d for d in objects}
    differing = sorted(
        f"{k}/{n}"
        for (k, n) in theirs.keys() | ours.keys()
        if theirs.get((k, n)) != ours.get((k, n))
    )
    return (
        [f"renders differently from kubectl kustomize: {', '.join(differing)}"] if differing else []
    )


def check() -> int:
    failures = []
    if not GENERATED.exists() or GENERATED.read_text() != generated_text():
        failures.append(f"{GENERATED.relative_to(ROOT)} is stale: run `make k8s`")
    for directory in overlays():
        label = directory.relative_to(K8S)
        try:
            objects = render(directory)
        except (OSError, KeyError, ValueError, yaml.YAMLError) as exc:
            failures.append(f"{label}: does not render: {exc}")
            continue
        failures += [f"{label}: {e}" for e in validate(objects) + rules(objects)]
        failures += [f"{label}: {e}" for e in _compare_with_kubectl(directory, objects)]
        print(f"[kehu] k8s {label}: {len(objects)} objects valid", file=sys.stderr)
    for failure in failures:
        print(f"k8s: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["write"]:
        GENERATED.write_text(generated_text())
        print(f"wrote {GENERATED.relative_to(ROOT)}", file=sys.stderr)
        return 0
    if args[:1] == ["check"]:
        return check()
    if args[:1] == ["render"] and len(args) == 2:
        print(yaml.safe_dump_all(render(K8S / args[1]), sort_keys=False), end="")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
