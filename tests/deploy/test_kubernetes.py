"""The Kubernetes manifests (k8s/), rendered per overlay with the real `kubectl kustomize`, validated against
the Kubernetes schemas (kubernetes-validate, strict) and the CloudNativePG Cluster schema, and checked for the
properties production relies on."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import nats
import pytest
from nats.js.api import StreamConfig

from tests.deploy.conftest import OVERLAYS, ROOT, SERVICES, Rendered, venv_tool
from tests.support.natsserver import free_port

# Oldest Kubernetes the manifests support (preStop `sleep` needs 1.30) and the newest schemas we have.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
CNPG_CLUSTER_SCHEMA = Path(__file__).parent / "schemas" / "postgresql.cnpg.io_cluster_v1.json"
# Custom resources and the schema each is checked against; any other kind without a built-in schema fails.
CUSTOM_SCHEMAS = {("postgresql.cnpg.io/v1", "Cluster"): CNPG_CLUSTER_SCHEMA}
APP_IMAGE = "registry.example.org/callcentre/gp-callcentre"
SECRET_NAME = "callcentre-secrets"
PRESTOP_SECONDS = 5
DRAIN_SECONDS = 15 + 5  # uvicorn timeout_graceful_shutdown, then the outbox flush (shutdown_flush_seconds)


def pod_templates(doc: Rendered) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"]) for o in doc.workloads()]


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------------------------------------ schemas

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly_against_its_schema(rendered: dict[str, Rendered], overlay: str) -> None:
    doc = rendered[overlay]
    custom = {key: json.loads(path.read_text()) for key, path in CUSTOM_SCHEMAS.items()}
    errors: list[str] = []
    checked_by_custom_schema = set()
    for obj in doc.objects:
        ident = f"{obj['kind']}/{obj['metadata']['name']}"
        key = (obj["apiVersion"], obj["kind"])
        if key in custom:
            for error in jsonschema.Draft202012Validator(custom[key]).iter_errors(obj):
                errors.append(f"{ident}: {'.'.join(map(str, error.path))}: {error.message}")
            checked_by_custom_schema.add(key)
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{ident} (Kubernetes {version}): {'.'.join(map(str, error.path))}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{ident}: no schema for {key} in Kubernetes {version}; vendor its CRD schema "
                              f"into tests/deploy/schemas/ and add it to CUSTOM_SCHEMAS")
    assert not errors, "\n".join(errors)
    assert checked_by_custom_schema == set(CUSTOM_SCHEMAS)


def test_the_vendored_cluster_schema_is_strict() -> None:
    """A misspelt field must fail, or the schema check above proves nothing."""
    schema = json.loads(CNPG_CLUSTER_SCHEMA.read_text())
    cluster = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "x"},
               "spec": {"instances": 1, "bootstrap": {"initdb": {"database": "x", "owner": "x"}},
                        "storage": {"size": "1Gi"}}}
    jsonschema.validate(cluster, schema)
    for broken in ({"instances": 0}, {"instance": 1}, {"instances": 1, "storage": {"sise": "1Gi"}},
                   {"instances": 1, "postgresql": {"synchronous": {"method": "all", "number": 1}}},
                   {"instances": 1, "bootstrap": {"initdb": {"databse": "x"}}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**cluster, "spec": broken}, schema)


# ------------------------------------------------------------------------------------------------ pods

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_pinned_bounded_and_locked_down(rendered: dict[str, Rendered], overlay: str) -> None:
    doc = rendered[overlay]
    problems: list[str] = []
    for ident, spec in pod_templates(doc):
        pod_security = spec.get("securityContext", {})
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{ident}: mounts a service account token")
        if spec.get("enableServiceLinks") is not False:
            problems.append(f"{ident}: service links would inject e.g. GATEWAY_PORT=tcp://...")
        for c in all_containers(spec):
            where = f"{ident} container {c['name']}"
            image = c["image"]
            last = image.rsplit("/", 1)[-1]
            if image.endswith(":latest") or not (":" in last or "@sha256:" in image):
                problems.append(f"{where}: image {image!r} is not pinned to a tag or digest")
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in c.get("resources", {}).get(kind, {}):
                        problems.append(f"{where}: no {kind}.{resource}")
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
                problems.append(f"{where}: may run as root")
            if (sc.get("runAsUser", pod_security.get("runAsUser")) or 0) == 0:
                problems.append(f"{where}: no non-zero runAsUser")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped")
            seccomp = sc.get("seccompProfile", pod_security.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: no RuntimeDefault seccomp profile")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_long_running_containers_have_probes_and_a_drain_that_fits(rendered: dict[str, Rendered],
                                                                   overlay: str) -> None:
    doc = rendered[overlay]
    for obj in [*doc.of_kind("Deployment"), *doc.of_kind("StatefulSet")]:
        spec = obj["spec"]["template"]["spec"]
        for c in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{obj['metadata']['name']}/{c['name']} has no {probe}"
    for package, name, _prefix, port, _db in SERVICES:
        spec = doc.get("Deployment", name)["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        # args, not command: the image's entry point must run (it turns POSTGRES_URI into the database URL).
        assert "command" not in c and c["args"] == ["python", "-m", package, "serve"]
        assert c["image"].startswith(APP_IMAGE + ":") or c["image"].startswith(APP_IMAGE + "@")
        assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": PRESTOP_SECONDS}}
        assert spec["terminationGracePeriodSeconds"] >= PRESTOP_SECONDS + DRAIN_SECONDS + 5
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be an emptyDir"
        assert spec["securityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_wire_the_services_together(rendered: dict[str, Rendered], overlay: str) -> None:
    """Each service listens on 0.0.0.0 at its own port, its Service routes there, the gateway's upstream URLs
    name real Services and ports, and every secret is a reference to the app secret or to the service's own
    CloudNativePG cluster."""
    doc = rendered[overlay]
    configs = {c["metadata"]["name"]: c["data"] for c in doc.of_kind("ConfigMap")}
    services = {s["metadata"]["name"]: s for s in doc.of_kind("Service")}
    clusters = {c["metadata"]["name"] for c in doc.of_kind("Cluster")}
    for package, name, prefix, port, database in SERVICES:
        deployment = doc.get("Deployment", name)
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        (config_ref,) = c["envFrom"]
        config = configs[config_ref["configMapRef"]["name"]]
        assert config[f"{prefix}HOST"] == "0.0.0.0" and config[f"{prefix}PORT"] == str(port)
        service = services[name]
        assert matches(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
        assert service["spec"]["ports"][0]["port"] == port and service["spec"]["ports"][0]["targetPort"] == "http"
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        assert refs["CALLCENTRE_IDENTITY_SECRET"] == {"name": SECRET_NAME, "key": "identity-secret"}
        if database:
            assert database in clusters
            assert refs["POSTGRES_URI"] == {"name": f"{database}-app", "key": "uri"}
        for ref in refs.values():
            assert ref["name"] == SECRET_NAME or ref["name"].removesuffix("-app") in clusters
    gateway_config = configs[doc.get("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
                             ["envFrom"][0]["configMapRef"]["name"]]
    for key, target in (("GATEWAY_REGISTRY_URL", "practice-registry-svc"), ("GATEWAY_BOOKING_URL", "booking-svc"),
                        ("GATEWAY_DESK_URL", "agent-desk-svc")):
        assert gateway_config[key] == f"http://{target}:{services[target]['spec']['ports'][0]['port']}"
    (desk,) = doc.get("Deployment", "agent-desk-svc")["spec"]["template"]["spec"]["containers"]
    desk_refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in desk["env"] if "valueFrom" in e}
    assert desk_refs["CALLCENTRE_JWT_SECRET"] == "jwt-secret"
    assert desk_refs["CALLCENTRE_ADMIN_USER"] == "admin-user"
    assert desk_refs["CALLCENTRE_ADMIN_PASSWORD"] == "admin-password"
    for _, name, _, _, database in SERVICES:
        deployment = doc.get("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        config = configs[deployment["envFrom"][0]["configMapRef"]["name"]]
        # The gateway has no NATS connection (and no network path to NATS).
        assert config.get("CALLCENTRE_NATS_URL") == ("nats://nats:4222" if database else None)
    assert gateway_config["GATEWAY_TRUST_FORWARDED_FOR"] == "true"
    assert "nats" in services and services["nats-headless"]["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_in_the_repository(rendered: dict[str, Rendered], overlay: str) -> None:
    doc = rendered[overlay]
    assert not doc.of_kind("Secret"), "Secrets are created in the cluster, never rendered from the repository"
    for obj in doc.objects:
        assert "stringData" not in obj and (obj["kind"] == "ConfigMap" or "data" not in obj)
    for config in doc.of_kind("ConfigMap"):
        for key in config["data"]:
            assert not re.search(r"SECRET|PASSWORD|TOKEN", key), f"{key} belongs in a Secret"


# ------------------------------------------------------------------------------------------------ migrations

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_migration_job_on_its_own_database(rendered: dict[str, Rendered], overlay: str) -> None:
    doc = rendered[overlay]
    jobs = {j["metadata"]["name"]: j for j in doc.of_kind("Job")}
    for package, name, _prefix, _port, database in SERVICES:
        if database is None:
            assert f"{name}-migrate" not in jobs
            continue
        job = jobs[f"{name}-migrate"]
        spec = job["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert c["args"] == ["python", "-m", package, "migrate"] and "command" not in c
        assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1
        uri = next(e for e in c["env"] if e["name"] == "POSTGRES_URI")
        assert uri["valueFrom"]["secretKeyRef"] == {"name": f"{database}-app", "key": "uri"}
        # Same image as the Deployment, so the schema and the code that needs it ship together.
        deployment = doc.get("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert c["image"] == deployment["image"]
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == name and labels["app.kubernetes.io/component"] == "migration"
        # Never selected by the Service (a running migration must not receive traffic).
        assert not matches(doc.get("Service", name)["spec"]["selector"], labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_release_phases_cover_every_object_in_dependency_order(rendered: dict[str, Rendered], overlay: str) -> None:
    """deploy/k8s-release.sh applies by label: everything that is neither a server nor a migration first, then
    the migration Jobs, then the servers. Whatever a Job or a server needs must land in an earlier phase."""
    doc = rendered[overlay]

    def phase(obj: dict[str, Any]) -> int:
        component = obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        return {"migration": 2, "server": 3}.get(component, 1)

    phases = {(o["kind"], o["metadata"]["name"]): phase(o) for o in doc.objects}
    assert {phases[("Job", f"{name}-migrate")] for _, name, *_rest, db in SERVICES if db} == {2}
    assert {phases[("Deployment", name)] for _, name, *_ in SERVICES} == {3}
    for workload in doc.workloads():
        mine = phases[(workload["kind"], workload["metadata"]["name"])]
        spec = workload["spec"]["template"]["spec"]
        needs = [("ServiceAccount", spec["serviceAccountName"])]
        needs += [("ConfigMap", ref["configMapRef"]["name"]) for c in spec["containers"] for ref in c.get("envFrom", [])]
        needs += [("ConfigMap", v["configMap"]["name"]) for v in spec.get("volumes", []) if "configMap" in v]
        for need in needs:
            assert phases[need] < mine or (mine == 1 and phases[need] == 1), f"{workload['metadata']['name']} needs {need}"
    assert all(phases[("Cluster", c["metadata"]["name"])] == 1 for c in doc.of_kind("Cluster"))


def test_release_script_applies_in_order_and_stops_without_the_secret(tmp_path: Path) -> None:
    """Runs deploy/k8s-release.sh against a stand-in kubectl that records each call (rendering uses the real one)."""
    real = venv_tool("kubectl")
    log = tmp_path / "calls.log"
    fake = tmp_path / "kubectl"
    fake.write_text(f"""#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  kustomize*) exec "{real}" "$@" ;;
  *"get secret"*) [ -z "$FAKE_SECRET_MISSING" ] ;;
  *"get job --selector"*) echo job.batch/booking-svc-migrate; echo job.batch/agent-desk-svc-migrate ;;
  *"Failed"*) echo "" ;;
  *"status.succeeded"*) echo 1 ;;
  *"get deployment --selector"*) echo deployment.apps/booking-svc ;;
  *) exit 0 ;;
esac
""")
    fake.chmod(0o755)
    script = ROOT / "deploy" / "k8s-release.sh"
    env = {**os.environ, "KUBECTL": str(fake), "FAKE_SECRET_MISSING": ""}
    ok = subprocess.run(["sh", str(script), str(ROOT / "k8s" / "overlays" / "prod")], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    calls = log.read_text().splitlines()
    order = [
        "apply -f", "component notin (server,migration)",
        "rollout status statefulset/nats",
        "wait clusters.postgresql.cnpg.io --all --for=condition=Ready",
        "get secret callcentre-secrets",
        "delete job --selector app.kubernetes.io/component=migration",
        "--selector app.kubernetes.io/component=migration",
        "--selector app.kubernetes.io/component=server",
        "rollout status deployment.apps/booking-svc",
    ]
    positions = [next(i for i, call in enumerate(calls) if step in call) for step in order]
    assert positions[1:] == sorted(positions[1:]), calls
    assert all("-n callcentre" in call for call in calls if call.startswith("-n"))
    assert calls[-1].startswith("apply -f") and "--selector" not in calls[-1]

    log.write_text("")
    missing = subprocess.run(["sh", str(script), str(ROOT / "k8s" / "overlays" / "prod")],
                             env={**env, "FAKE_SECRET_MISSING": "1"}, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "callcentre-secrets is missing" in missing.stderr
    assert not any("component=migration" in call for call in log.read_text().splitlines())


# ------------------------------------------------------------------------------------------------ network

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_only_the_paths_we_need(rendered: dict[str, Rendered],
                                                                           overlay: str) -> None:
    doc = rendered[overlay]
    policies = {p["metadata"]["name"]: p["spec"] for p in doc.of_kind("NetworkPolicy")}
    deny = policies["default-deny-all"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    dns = policies["allow-dns"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53} and {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}

    def peers_and_ports(rules: list[dict[str, Any]]) -> set[tuple[str, int]]:
        out = set()
        for rule in rules:
            for peer in rule.get("to", rule.get("from", [])):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                key = labels.get("app.kubernetes.io/name") or labels.get("cnpg.io/cluster") or "namespace"
                out |= {(key, p["port"]) for p in rule["ports"]}
        return out

    gateway = policies["gateway"]
    assert peers_and_ports(gateway["ingress"]) == {("namespace", 8000)}
    assert peers_and_ports(gateway["egress"]) == {(name, port) for _, name, _, port, db in SERVICES if db}
    for _, name, _, port, database in SERVICES:
        if database is None:
            continue
        own = policies[name]
        assert own["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert peers_and_ports(own["ingress"]) == {("gateway", port)}
        assert peers_and_ports(own["egress"]) == {("nats", 4222), (database, 5432)}
        db_policy = policies[database]
        assert (name, 5432) in peers_and_ports(db_policy["ingress"])
        other_services = {n for _, n, *_ in SERVICES} - {name}
        assert not {peer for peer, _ in peers_and_ports(db_policy["ingress"])} & other_services
    nats = policies["nats"]
    assert {tuple(r["ports"][0].values())[0] for r in nats["ingress"]} == {4222, 6222}
    operator = policies["postgres-instances"]["ingress"][0]
    assert {p["port"] for p in operator["ports"]} == {8000, 5432}
    assert operator["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "cnpg-system"}


def test_the_gateway_is_published_through_the_ingress(rendered: dict[str, Rendered]) -> None:
    for overlay, host in (("dev", "callcentre.dev.example.org"), ("prod", "callcentre.example.org")):
        (ingress,) = rendered[overlay].of_kind("Ingress")
        (rule,) = ingress["spec"]["rules"]
        assert rule["host"] == host and ingress["spec"]["tls"][0]["hosts"] == [host]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": "gateway", "port": {"name": "http"}}


# ------------------------------------------------------------------------------------------------ overlays

def test_prod_is_highly_available(rendered: dict[str, Rendered]) -> None:
    prod = rendered["prod"]
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in prod.of_kind("HorizontalPodAutoscaler")}
    pdbs = prod.of_kind("PodDisruptionBudget")
    for _, name, *_ in SERVICES:
        deployment = prod.get("Deployment", name)
        assert deployment["spec"]["replicas"] >= 2
        hpa = hpas[name]
        assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        (pdb,) = [p for p in pdbs if matches(p["spec"]["selector"]["matchLabels"], pod_labels)]
        assert pdb["spec"].get("minAvailable", 0) >= 1 or pdb["spec"].get("maxUnavailable") == 1
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {s["topologyKey"] for s in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert all("app.kubernetes.io/name" in s["matchLabelKeys"] for s in spread)
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{APP_IMAGE}:0.1.0"
    nats = prod.get("StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    required = nats["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert required["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in required
    assert any(matches(p["spec"]["selector"]["matchLabels"], nats["spec"]["template"]["metadata"]["labels"])
               and p["spec"]["maxUnavailable"] == 1 for p in pdbs)
    for cluster in prod.of_kind("Cluster"):
        spec = cluster["spec"]
        assert spec["instances"] == 3 and spec["affinity"]["podAntiAffinityType"] == "required"
        assert spec["postgresql"]["synchronous"] == {"method": "any", "number": 1}


def test_dev_is_one_of_everything(rendered: dict[str, Rendered]) -> None:
    dev = rendered["dev"]
    assert dev.namespace == "callcentre-dev"
    assert all(o["metadata"].get("namespace") == "callcentre-dev" for o in dev.objects if o["kind"] != "Namespace")
    assert {d["spec"]["replicas"] for d in dev.of_kind("Deployment")} == {1}
    assert dev.get("StatefulSet", "nats")["spec"]["replicas"] == 1
    assert {c["spec"]["instances"] for c in dev.of_kind("Cluster")} == {1}
    assert not dev.of_kind("HorizontalPodAutoscaler")
    (nats_config,) = [c for c in dev.of_kind("ConfigMap") if c["metadata"]["name"].startswith("nats-config")]
    assert "cluster {" not in nats_config["data"]["nats.conf"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_configuration_is_accepted_by_nats_server(rendered: dict[str, Rendered], overlay: str,
                                                       tmp_path: Path) -> None:
    """The rendered nats.conf, checked by the real nats-server (-t: parse and validate, then exit)."""
    doc = rendered[overlay]
    (config,) = [c for c in doc.of_kind("ConfigMap") if c["metadata"]["name"].startswith("nats-config")]
    conf = tmp_path / "nats.conf"
    conf.write_text(config["data"]["nats.conf"])
    result = subprocess.run([str(venv_tool("nats-server")), "-c", str(conf), "-t"], capture_output=True, text=True,
                            env={**os.environ, "SERVER_NAME": "nats-0"}, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    statefulset = doc.get("StatefulSet", "nats")
    replicas = statefulset["spec"]["replicas"]
    routes = re.findall(r"nats://(nats-\d+)\.nats-headless:6222", config["data"]["nats.conf"])
    assert routes == ([f"nats-{i}" for i in range(replicas)] if replicas > 1 else [])
    mounts = {m["mountPath"] for m in statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert {"/data", "/var/run/nats", "/etc/nats"} <= mounts
    assert "store_dir: /data" in config["data"]["nats.conf"]
    assert "pid_file: /var/run/nats/nats.pid" in config["data"]["nats.conf"]


async def test_the_production_nats_config_forms_a_jetstream_cluster(rendered: dict[str, Rendered],
                                                                     tmp_path: Path) -> None:
    """Three real nats-servers run prod's rendered nats.conf with only the addresses moved to loopback ports
    (pod DNS names -> 127.0.0.1, /data and /var/run -> temporary folders): they must form one cluster whose
    JetStream accepts a stream with three replicas, as the services' streams need in production."""
    (config,) = [c for c in rendered["prod"].of_kind("ConfigMap") if c["metadata"]["name"].startswith("nats-config")]
    text = config["data"]["nats.conf"]
    ports = [(free_port(), free_port(), free_port()) for _ in range(3)]  # client, cluster, monitor
    servers = []
    try:
        for i, (client, cluster, monitor) in enumerate(ports):
            conf = text.replace("0.0.0.0:4222", f"127.0.0.1:{client}").replace("0.0.0.0:6222", f"127.0.0.1:{cluster}")
            conf = conf.replace("0.0.0.0:8222", f"127.0.0.1:{monitor}")
            conf = conf.replace("store_dir: /data", f"store_dir: {tmp_path / f'data-{i}'}")
            conf = conf.replace("/var/run/nats/nats.pid", str(tmp_path / f"nats-{i}.pid"))
            for j, (_, peer_cluster, _) in enumerate(ports):
                conf = conf.replace(f"nats://nats-{j}.nats-headless:6222", f"nats://127.0.0.1:{peer_cluster}")
            assert "nats-headless:6222" not in conf and "0.0.0.0" not in conf
            path = tmp_path / f"nats-{i}.conf"
            path.write_text(conf)
            log = open(tmp_path / f"nats-{i}.log", "wb")
            servers.append(subprocess.Popen([str(venv_tool("nats-server")), "-c", str(path)], stdout=log,
                                            stderr=subprocess.STDOUT, env={**os.environ, "SERVER_NAME": f"nats-{i}"}))
        nc = await nats.connect([f"nats://127.0.0.1:{c}" for c, _, _ in ports], connect_timeout=2,
                                max_reconnect_attempts=60, reconnect_time_wait=0.5)
        try:
            js = nc.jetstream(timeout=5)
            info = None
            for _ in range(60):  # the meta leader is elected a few seconds after the routes connect
                try:
                    info = await js.add_stream(StreamConfig(name="PROBE", subjects=["probe.>"], num_replicas=3))
                    break
                except Exception:  # noqa: BLE001 - not yet: no JetStream meta leader or not enough peers
                    await asyncio.sleep(0.5)
            assert info is not None, "no JetStream cluster formed:\n" + (tmp_path / "nats-0.log").read_text()[-2000:]
            assert info.config.num_replicas == 3
            ack = await js.publish("probe.one", b"x")
            assert ack.stream == "PROBE" and ack.seq == 1
            state = await js.stream_info("PROBE")
            assert state.cluster is not None and state.cluster.name == "callcentre"
            assert len(state.cluster.replicas or []) == 2  # the leader plus two followers
        finally:
            await nc.close()
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)
