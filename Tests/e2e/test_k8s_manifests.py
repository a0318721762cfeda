"""deploy/k8s validates offline: every object kustomize renders (the base and each overlay) against the Kubernetes
API schemas (`kubernetes-validate`, strict: an unknown field or kind fails), the InferencePool and HTTPRoute against
their CRD schemas vendored in Tests/Fixtures/k8s (README there: source and version), and the pieces that must agree
with the server: the endpoint picker's metric names are gauges Sputnik's /metrics serves, every SPUTNIK_* variable
names a `sputnik serve` option, the probes hit /health on the container's port."""
import json
import os
import shutil
import subprocess
import urllib.request

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import BIN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "k8s")
CRDS = os.path.join(ROOT, "Tests", "Fixtures", "k8s")
KUBE_VERSION = "1.32"
KUSTOMIZATIONS = ["base", "overlays/example"]


def render(path: str) -> list:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for `kubectl kustomize`) is missing: scripts/install-deps.sh installs it"
    out = subprocess.run([kubectl, "kustomize", os.path.join(K8S, path)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def crd_schemas() -> dict:
    """(group/version, kind) → openAPIV3Schema of every served version of the vendored CRDs."""
    out = {}
    for f in sorted(os.listdir(CRDS)):
        if not f.endswith(".yaml"):
            continue
        with open(os.path.join(CRDS, f)) as fh:
            crd = yaml.safe_load(fh)
        assert crd["kind"] == "CustomResourceDefinition"
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                out[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    return out


def unknown_fields(doc, schema, path="") -> list:
    """Fields of `doc` that `schema` does not declare (the API server's strict field validation)."""
    found = []
    if isinstance(doc, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        if props is None or schema.get("x-kubernetes-preserve-unknown-fields"):
            return found  # free-form (e.g. metadata, which the API server checks itself)
        for k, v in doc.items():
            if k not in props:
                found.append(f"{path}.{k}")
            else:
                found += unknown_fields(v, props[k], f"{path}.{k}")
    elif isinstance(doc, list) and "items" in schema:
        for i, v in enumerate(doc):
            found += unknown_fields(v, schema["items"], f"{path}[{i}]")
    return found


def validate(doc: dict, crds: dict):
    key = (doc["apiVersion"], doc["kind"])
    if key in crds:
        schema = crds[key]
        jsonschema.validate(doc, schema)
        assert not unknown_fields(doc, schema), f"{doc['kind']}: unknown fields {unknown_fields(doc, schema)}"
    else:
        # Raises SchemaNotFoundError for a kind Kubernetes does not have: that is a failure here.
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_rendered_object_validates(path):
    crds = crd_schemas()
    docs = render(path)
    kinds = sorted(d["kind"] for d in docs)
    for k in ["Deployment", "Service", "InferencePool", "HTTPRoute", "ConfigMap"]:
        assert k in kinds, f"{path} renders no {k}: {kinds}"
    for d in docs:
        validate(d, crds)


def test_validation_rejects_what_a_cluster_rejects():
    """The checks above fail on the mistakes they exist for."""
    crds = crd_schemas()
    pool = next(d for d in render("base") if d["kind"] == "InferencePool")
    bad = json.loads(json.dumps(pool))
    bad["spec"]["targetPortNumber"] = 8080  # the v1alpha2 field name, gone in v1
    with pytest.raises(AssertionError):
        validate(bad, crds)
    bad = json.loads(json.dumps(pool))
    bad["spec"]["targetPorts"] = [{"number": 70000}]
    with pytest.raises(jsonschema.ValidationError):
        validate(bad, crds)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, crds)
    svc = next(d for d in render("base") if d["kind"] == "Service")
    svc = json.loads(json.dumps(svc))
    svc["spec"]["ports"][0]["prot"] = "TCP"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(svc, crds)


def sputnik_container(docs):
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "sputnik")
    return dep, next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "sputnik")


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_pool_selects_the_model_server_pods(path):
    docs = render(path)
    dep, c = sputnik_container(docs)
    pool = next(d for d in docs if d["kind"] == "InferencePool")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pool["spec"]["selector"]["matchLabels"].items() <= labels.items()
    port = next(p["containerPort"] for p in c["ports"] if p["name"] == "http")
    assert [p["number"] for p in pool["spec"]["targetPorts"]] == [port]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert int(env["SPUTNIK_PORT"]) == port and env["SPUTNIK_HOST"] == "0.0.0.0"
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"]:
        assert c[probe]["httpGet"]["path"] == "/health"
    route = next(d for d in docs if d["kind"] == "HTTPRoute")
    refs = [b for r in route["spec"]["rules"] for b in r["backendRefs"]]
    assert refs == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool["metadata"]["name"]}]
    epp_svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == pool["spec"]["endpointPickerRef"]["name"])
    assert pool["spec"]["endpointPickerRef"]["port"]["number"] in [p["port"] for p in epp_svc["spec"]["ports"]]
    # The pod's grace period covers the preStop sleep.
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > int(c["lifecycle"]["preStop"]["exec"]["command"][1])


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_sputnik_variable_is_a_serve_option(path):
    _, c = sputnik_container(render(path))
    help_text = subprocess.run([BIN, "serve", "--help"], check=True, capture_output=True, text=True, timeout=60).stdout
    for e in c["env"]:
        flag = "--" + e["name"].removeprefix("SPUTNIK_").lower().replace("_", "-")
        assert flag in help_text, f"{e['name']} names no `sputnik serve` flag ({flag})"


def test_picker_reads_gauges_that_sputnik_serves(server):
    cm = next(d for d in render("base") if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "sputnik-epp-config")
    config = yaml.safe_load(cm["data"]["epp-config.yaml"])
    assert config["kind"] == "EndpointPickerConfig"
    extractor = next(p for p in config["plugins"] if p.get("type") == "model-server-protocol-metrics")
    engine = next(e for e in extractor["parameters"]["engineConfigs"] if e["name"] == extractor["parameters"]["defaultEngine"])
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    gauges = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE") and line.split()[3] == "gauge"}
    for spec in ["queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec"]:
        assert engine[spec] in gauges, f"{spec} {engine[spec]} is not a gauge on /metrics: {sorted(gauges)}"
    # The pods carry the engine label the extractor keys on.
    dep, _ = sputnik_container(render("base"))
    assert dep["spec"]["template"]["metadata"]["labels"][extractor["parameters"]["engineLabelKey"]] == engine["name"]
    # The data layer scrapes the path the server serves its metrics on.
    source = next(p for p in config["plugins"] if p.get("type") == "metrics-data-source")
    assert source["parameters"]["path"] == "/metrics"
