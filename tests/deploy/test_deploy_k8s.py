"""deploy/k8s: every manifest validated (strictly: unknown fields are errors) against the
Kubernetes OpenAPI schemas bundled by kubernetes-validate, then checked for what must agree
across files (selectors, ports, images, Secret keys, bot settings) and for our policy."""

from __future__ import annotations

import copy
import re
from collections import Counter

import kubernetes_validate
import pytest
import yaml
from deploy_checks import K8S_DIR, bot_setting_names, k8s_documents, pod_spec, workload_problems

K8S_VERSION = "1.30.0"  # the oldest version still supported upstream when this was written
DOCS = k8s_documents()


def find(kind: str, name: str) -> dict:
    matches = [doc for _, doc in DOCS if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def container(doc: dict) -> dict:
    return pod_spec(doc)["containers"][0]


def env_of(doc: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(doc).get("env", [])}


@pytest.mark.parametrize("path, doc", DOCS,
                         ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in DOCS])
@pytest.mark.parametrize("version", [K8S_VERSION, kubernetes_validate.latest_version()])
def test_manifest_matches_the_kubernetes_schema(path, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_mistakes():
    deployment = copy.deepcopy(find("Deployment", "torchserve"))
    container(deployment)["readinessProbe"]["httpGet"]["prot"] = 8080  # typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    hpa = copy.deepcopy(find("HorizontalPodAutoscaler", "torchserve"))
    hpa["spec"]["minReplicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path, doc", DOCS,
                         ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in DOCS])
def test_workloads_follow_policy(path, doc):
    assert workload_problems(doc) == []
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == "image-styling"


def test_policy_check_can_fail():
    bad = copy.deepcopy(find("Deployment", "bot"))
    spec = pod_spec(bad)
    del spec["securityContext"]["runAsNonRoot"]
    c = spec["containers"][0]
    del c["livenessProbe"]
    c["resources"] = {}
    c["securityContext"]["readOnlyRootFilesystem"] = False
    c["image"] = "image-styling/bot:latest"
    c["env"].append({"name": "BOT_TOKEN", "value": "123:abc"})
    problems = "\n".join(workload_problems(bad))
    for expected in ("may run as root", "no livenessProbe", "no memory limits",
                     "writable root", "no fixed tag", "BOT_TOKEN has a literal"):
        assert expected in problems


def test_kustomization_lists_every_manifest_but_the_secret_example():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}
    images = {i["name"] for i in kustomization["images"]}
    used = {container(doc)["image"].split(":")[0] for _, doc in DOCS if pod_spec(doc)}
    assert images == used - {"redis"}
    assert all(i["newTag"] != "latest" for i in kustomization["images"])


def test_services_select_pods_and_name_their_ports():
    for _, svc in DOCS:
        if svc["kind"] != "Service":
            continue
        workloads = [d for _, d in DOCS if pod_spec(d) and
                     svc["spec"]["selector"].items() <=
                     d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(workloads) == 1, svc["metadata"]["name"]
        ports = {p["name"] for p in container(workloads[0])["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports
    for _, doc in DOCS:
        if pod_spec(doc):
            assert doc["spec"]["selector"]["matchLabels"].items() <= \
                doc["spec"]["template"]["metadata"]["labels"].items()


def test_probes_use_declared_ports_and_networkpolicies_match_them():
    for _, doc in DOCS:
        if not pod_spec(doc):
            continue
        c = container(doc)
        names = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            action = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
            if action:
                assert action["port"] in names
    for _, policy in DOCS:
        if policy["kind"] != "NetworkPolicy" or not policy["spec"]["podSelector"]:
            continue
        target = [d for _, d in DOCS if pod_spec(d) and policy["spec"]["podSelector"]
                  ["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        ports = {p["containerPort"] for p in container(target[0])["ports"]}
        for rule in policy["spec"]["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= ports


def test_torchserve_token_auth_is_replaced_by_network_policy():
    ts = find("Deployment", "torchserve")
    env = env_of(ts)
    assert env["TS_DISABLE_TOKEN_AUTHORIZATION"]["value"] == "true"
    assert env["TS_MANAGEMENT_ADDRESS"]["value"].startswith("http://127.0.0.1:")
    assert "management" not in {p["name"] for p in container(ts)["ports"]}
    assert env["MSGNET_THREADS"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert find("NetworkPolicy", "default-deny-ingress")["spec"]["podSelector"] == {}
    inference_from = find("NetworkPolicy", "torchserve")["spec"]["ingress"][0]["from"]
    assert inference_from == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "bot"}}}]
    for _, svc in DOCS:
        if svc["kind"] == "Service":
            assert svc["spec"]["type"] == "ClusterIP"
    hpa = find("HorizontalPodAutoscaler", "torchserve")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "torchserve"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_bot_runs_replicated_in_webhook_mode_with_redis():
    bot = find("Deployment", "bot")
    assert bot["spec"]["replicas"] >= 2
    config = find("ConfigMap", "bot-config")["data"]
    env = env_of(bot)
    known = bot_setting_names()
    assert set(config) - known == set(), "ConfigMap keys the bot does not read"
    assert set(env) - known - {"REDIS_PASSWORD"} == set()
    assert config["WEBHOOK_URL"].startswith("https://")
    assert config["WEBHOOK_HOST"] == "0.0.0.0"
    assert config["TS_URL"] == "http://torchserve:8080"
    webhook_port = int(config["WEBHOOK_PORT"])
    assert {"name": "webhook", "containerPort": webhook_port} in container(bot)["ports"]
    assert env["WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "image-styling-bot"
    assert re.fullmatch(r"redis://:\$\(REDIS_PASSWORD\)@redis:6379/\d+", env["REDIS_URL"]["value"])
    # the token is a mounted file; the Secret volume provides exactly that path
    token_path = env["BOT_TOKEN_FILE"]["value"]
    mounts = {m["name"]: m["mountPath"] for m in container(bot)["volumeMounts"]}
    volume = next(v for v in pod_spec(bot)["volumes"] if v["name"] == "bot-token")
    assert token_path == f"{mounts['bot-token']}/{volume['secret']['items'][0]['path']}"
    ingress = find("Ingress", "bot")
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"] == config["WEBHOOK_PATH"] and ingress["spec"]["tls"]
    assert find("StatefulSet", "redis")["spec"]["volumeClaimTemplates"]


def test_secret_keys_referenced_exist_in_the_example_secret():
    secret = find("Secret", "image-styling-bot")
    keys = set(secret["stringData"])
    used = Counter()
    for _, doc in DOCS:
        if not pod_spec(doc):
            continue
        for c in pod_spec(doc)["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "image-styling-bot" and ref["key"] in keys
                    used[ref["key"]] += 1
        for v in pod_spec(doc).get("volumes", []):
            for item in v.get("secret", {}).get("items", []):
                assert item["key"] in keys
                used[item["key"]] += 1
    assert set(used) == keys
    assert all(value.startswith("REPLACE-WITH") for value in secret["stringData"].values())
