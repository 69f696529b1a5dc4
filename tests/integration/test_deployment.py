"""The production files hold: the Kubernetes overlay renders (kustomize) and every object validates against a
pinned Kubernetes version; every service has its Deployment, probes, resources and disruption budget; only the
public services take traffic from outside; and each service, given exactly the environment a manifest or the
compose file gives it, would start (`python -m services.<name> --check`)."""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import kubernetes_validate
import pytest
import yaml

from services.embedded.platform import SERVICE_NAMES
from tests.conftest import ROOT

KUBERNETES_VERSION = "1.33.0"
KUSTOMIZE_VERSION = "v5.7.1"
OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "production"
PUBLIC = {"gateway", "preferences", "insights", "intranet", "console"}  # what staff and publishers open

#: What a Secret would hold, in a form each setting accepts (the check connects to nothing).
SECRET_VALUES = {"DATABASE_URL": "postgresql+asyncpg://budkavle:secret@postgres:5432/budkavle",
                 "SMTP_URL": "smtp://relay.example.se:25", "BUDKAVLE_API_TOKENS": "check-token=fvm|fvis",
                 "KAFKA_SASL_USERNAME": "budkavle"}


@pytest.fixture(scope="module")
def kustomize() -> list[str]:
    """kustomize itself: on the PATH, or built once by Go from its module (`go install`) into a cache, or, on a
    machine without Go, the one inside kubectl."""
    if found := shutil.which("kustomize"):
        return [found]
    cache = Path.home() / ".cache" / "budkavle" / f"kustomize-{KUSTOMIZE_VERSION}"
    binary = cache / "kustomize"
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not binary.exists() and go is None and (kubectl := shutil.which("kubectl")):
        return [kubectl, "kustomize"]
    if not binary.exists():
        assert go is not None, "kustomize needs Go (go install) or kubectl on this machine"
        result = subprocess.run([go, "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
                                env={**os.environ, "GOBIN": str(cache)}, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
    return [str(binary)]


@pytest.fixture(scope="module")
def rendered(kustomize: list[str]) -> list[dict[str, Any]]:
    result = subprocess.run([*kustomize, "build", str(OVERLAY)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_rendered_object_validates_against_the_pinned_kubernetes_version(
        rendered: list[dict[str, Any]]) -> None:
    errors = []
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message} at {list(error.path)}")
    assert errors == []
    assert {o["metadata"].get("namespace") for o in rendered} == {"budkavle"}


def test_a_broken_manifest_fails_the_validation() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"replicas": "two", "selector": {}, "template": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_service_has_a_deployment_with_probes_resources_and_a_disruption_budget(
        rendered: list[dict[str, Any]]) -> None:
    deployments, budgets = of_kind(rendered, "Deployment"), of_kind(rendered, "PodDisruptionBudget")
    services = of_kind(rendered, "Service")
    assert set(deployments) == set(SERVICE_NAMES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
        assert container["image"] == "registry.example.se/budkavle/budkavle:1.0.0"
        [migrate] = pod["initContainers"]
        assert migrate["command"] == ["python", "-m", "services.embedded.migrations", "upgrade", name]
        assert budgets[name]["spec"]["selector"] == deployment["spec"]["selector"]
        assert services[name]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        # Secrets come from Secret objects only, never as values in the manifest.
        for variable in container.get("env", []):
            if re.search(r"PASSWORD|SECRET|TOKENS|_KEY$|DATABASE_URL|SMTP_URL", variable["name"]):
                assert "secretKeyRef" in variable.get("valueFrom", {}), variable
    assert deployments["scheduler"]["spec"]["replicas"] == 2
    assert deployments["email"]["spec"]["replicas"] == 2 and deployments["gateway"]["spec"]["replicas"] == 2


def test_only_the_gateway_preferences_insights_intranet_and_console_take_traffic_from_outside(
        rendered: list[dict[str, Any]]) -> None:
    policies = of_kind(rendered, "NetworkPolicy").values()

    def admitted_from_outside(name: str) -> bool:
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "budkavle"}
        for policy in policies:
            if not selects(policy["spec"]["podSelector"], labels):
                continue
            for rule in policy["spec"].get("ingress", []):
                if not rule.get("from") or any("ipBlock" in peer for peer in rule["from"]):
                    return True
        return False
    assert {name for name in SERVICE_NAMES if admitted_from_outside(name)} == PUBLIC
    # Every pod is covered by a policy that admits nothing (deny by default).
    assert any(p["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "budkavle"}}
               and "ingress" not in p["spec"] for p in policies)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        inside = labels.get(expression["key"]) in expression["values"]
        if inside != (expression["operator"] == "In"):
            return False
    return True


# --- Each service, given only what a manifest gives it, would start -------------------------------------------

def container_environment(deployment: dict[str, Any], config: dict[str, str], mounts: Path) -> dict[str, str]:
    """The main container's environment as Kubernetes would give it: ConfigMap values, a stand-in for each
    Secret value, and mounted paths moved under `mounts` (with a CA file where a Secret's certificate goes)."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config)
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {})
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif "configMapKeyRef" in ref:
            env[variable["name"]] = config[ref["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in ref:
            key = ref["secretKeyRef"]["key"]
            env[variable["name"]] = SECRET_VALUES.get(key, f"a-stand-in-secret-for-{key}-0123456789abcdef")
    for mount in container.get("volumeMounts", []):
        local = mounts / mount["mountPath"].strip("/")
        local.mkdir(parents=True, exist_ok=True)
        shutil.copy(certifi.where(), local / "ca.crt")
        env = {k: v.replace(mount["mountPath"], str(local)) for k, v in env.items()}
    return env


def checks(environments: dict[str, dict[str, str]]) -> dict[str, tuple[int, str]]:
    """`python -m services.<name> --check` for each, side by side, with only the given environment."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    running = {name: subprocess.Popen([sys.executable, "-m", f"services.{name.split(':')[0]}", "--check"], cwd=ROOT,
                                      env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
               for name, env in environments.items()}
    results = {}
    for name, process in running.items():
        out, _ = process.communicate(timeout=120)
        results[name] = (process.returncode, out[-2000:])
    return results


@pytest.fixture(scope="module")
def mounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("mounts")


def test_each_deployment_gives_its_service_every_variable_it_requires(
        rendered: list[dict[str, Any]], mounts: Path) -> None:
    config = of_kind(rendered, "ConfigMap")["budkavle-config"]["data"]
    deployments = of_kind(rendered, "Deployment")
    environments = {name: container_environment(d, config, mounts) for name, d in deployments.items()}
    # The check can fail: the gateway without its tokens is refused.
    environments["gateway:without-tokens"] = {
        k: v for k, v in environments["gateway"].items() if k != "BUDKAVLE_API_TOKENS"}
    results = checks(environments)
    refused = results.pop("gateway:without-tokens")
    assert refused[0] != 0 and "BUDKAVLE_API_TOKENS is not set" in refused[1]
    assert {name: code for name, (code, _) in results.items()} == dict.fromkeys(SERVICE_NAMES, 0), results


# --- docker-compose.yml --------------------------------------------------------------------------------------

def interpolate(text: str) -> str:
    """Compose's `${VAR:?message}`, `${VAR:-default}` and `${VAR}`: a stand-in where a value is required."""
    def value(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if op == ":-":
            return rest
        return SECRET_VALUES.get(name, f"a-stand-in-secret-for-{name}-0123456789abcdef")
    return re.sub(r"\$\{([A-Z0-9_]+)(:\?|:-)?([^}]*)\}", value, text)


def test_the_compose_file_runs_every_service_with_a_healthcheck_and_every_variable_it_requires(
        tmp_path: Path) -> None:
    compose = yaml.safe_load(interpolate((ROOT / "docker-compose.yml").read_text()))
    services = compose["services"]
    assert set(SERVICE_NAMES) <= set(services)
    environments = {}
    for name in SERVICE_NAMES:
        service = services[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        environments[name] = {"BUDKAVLE_DATA_DIR": str(tmp_path / name),
                              **{k: "" if v is None else str(v) for k, v in service["environment"].items()}}
    for broker in (b for b in services if b.startswith("kafka")):
        assert services[broker]["healthcheck"]["test"]
    assert all(services[n]["environment"]["KAFKA_REPLICATION_FACTOR"] == "3" for n in SERVICE_NAMES)
    results = checks(environments)
    assert {name: code for name, (code, _) in results.items()} == dict.fromkeys(SERVICE_NAMES, 0), results
