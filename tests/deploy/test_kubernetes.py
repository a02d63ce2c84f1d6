"""The Kubernetes manifests validate (kubernetes-validate, strict, against a recent Kubernetes), and have
what issue 18 asks of them: probes and limits on every process, PDBs, an Ingress for /ws/ and /api/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.live_server import REPO

MANIFESTS = sorted((REPO / "infra" / "deploy" / "k8s").glob("*.yaml"))
KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
KUBERNETES_VERSION = "1.30.0"


def resources() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> list[dict]:
    return [doc for doc in resources() if doc["kind"] == kind]


def test_every_manifest_validates_strictly():
    assert MANIFESTS
    validated = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "-k", KUBERNETES_VERSION, *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.count("passed") == len(resources()), validated.stdout


def test_every_process_has_probes_limits_and_runs_unprivileged():
    deployments = {doc["metadata"]["name"]: doc for doc in of_kind("Deployment")}
    assert set(deployments) >= {
        "rochdale-web",
        "rochdale-api",
        "rochdale-dispatch-default",
        "rochdale-worker",
        "rochdale-beat",
    }
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        mounted = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        for container in pod["containers"]:
            assert container["livenessProbe"] and container["readinessProbe"], name
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, name
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert mounts.get("/tmp") in mounted, name
            environment = {variable["name"]: variable.get("value") for variable in container["env"]}
            assert mounts.get(environment["PROMETHEUS_MULTIPROC_DIR"]) in mounted, name
            if name in ("rochdale-web", "rochdale-api"):
                assert container["livenessProbe"]["httpGet"] == {"path": "/api/v1/health/live", "port": 8000}
                # Server scope: a stopped beat or dispatch worker must not take every API pod out at once.
                assert container["readinessProbe"]["httpGet"] == {
                    "path": "/api/v1/health/ready?scope=server",
                    "port": 8000,
                }
            else:
                role = {"rochdale-dispatch-default": "dispatch", "rochdale-worker": "worker"}.get(
                    name, "beat"
                )
                for probe in ("livenessProbe", "readinessProbe"):
                    command = container[probe]["exec"]["command"]
                    assert command[:5] == ["python", "manage.py", "process_alive", "--role", role], name
                    assert container[probe]["timeoutSeconds"] >= 10  # process_alive starts Django (2-3 s)


def test_the_migrate_job_pdbs_and_ingress():
    [job] = of_kind("Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["migrate", "--noinput"]
    budgets = {doc["spec"]["selector"]["matchLabels"]["app"] for doc in of_kind("PodDisruptionBudget")}
    assert budgets == {"rochdale-web", "rochdale-api"}
    [ingress] = of_kind("Ingress")
    routes = {
        path["path"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert routes["/ws/"] == "rochdale-web" and routes["/api/"] == "rochdale-api"
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    services = {doc["metadata"]["name"] for doc in of_kind("Service")}
    assert {"rochdale-web", "rochdale-api"} <= services
