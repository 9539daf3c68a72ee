"""docker-compose.yml and its override files: the Compose Specification schema, our own rules
(loopback-only ports, healthchecks, depends_on conditions, restart policies, no secrets), and
the pieces that must agree with each other (Prometheus targets, the key volume, .env.example).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_checks import (
    COMPOSE_FILES,
    ROOT,
    InterpolationError,
    bot_setting_names,
    compose_policy_problems,
    env_example,
    interpolate,
    load_compose,
    merge,
    schema_errors,
    secret_problems,
    variables,
)

BASE = ROOT / "docker-compose.yml"
OVERRIDES = [p for p in COMPOSE_FILES if p != BASE]
WEBHOOK_ENV = {"WEBHOOK_URL": "https://bot.example.org", "WEBHOOK_SECRET": "s3cret_value"}


def rendered(*paths: Path, extra: dict[str, str] | None = None) -> dict:
    env = {**env_example(), **(extra or {})}
    doc = load_compose(paths[0], env)
    for path in paths[1:]:
        doc = merge(doc, load_compose(path, env))
    return doc


def raw(*paths: Path) -> dict:
    doc = yaml.safe_load(paths[0].read_text(encoding="utf-8"))
    for path in paths[1:]:
        doc = merge(doc, yaml.safe_load(path.read_text(encoding="utf-8")))
    return doc


def test_interpolation_follows_the_compose_syntax():
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET} ${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$X", env) == \
        "v v d  d $X"
    assert interpolate("${UNSET:-${SET}}", env) == "v"
    with pytest.raises(InterpolationError, match="set it"):
        interpolate("${EMPTY:?set it}", env)
    assert variables("${A:-x} $$B ${C:?e} $D") == {"A", "C", "D"}


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_each_file_matches_the_compose_schema(path: Path):
    doc = load_compose(path, {**env_example(), **WEBHOOK_ENV})
    assert schema_errors(doc) == []


@pytest.mark.parametrize("override", [None, *OVERRIDES],
                         ids=lambda p: "base" if p is None else p.name)
def test_merged_stack_matches_schema_and_policy(override: Path | None):
    paths = [BASE] if override is None else [BASE, override]
    assert schema_errors(rendered(*paths, extra=WEBHOOK_ENV)) == []
    # policy on the raw text: the host IP of a port must not even be configurable
    assert compose_policy_problems(raw(*paths)) == []


def test_schema_check_rejects_a_broken_file():
    doc = rendered(BASE)
    doc["services"]["bot"]["healthcheck"]["interval"] = ["30s"]
    doc["services"]["bot"]["restart"] = {"policy": "always"}
    errors = schema_errors(doc)
    assert any("healthcheck" in e for e in errors) and any("restart" in e for e in errors)


def test_policy_check_catches_each_rule():
    bad = {"services": {
        "a": {"ports": ["8080:8080", "0.0.0.0:9090:9090"], "restart": "no",
              "depends_on": ["b"], "environment": {"BOT_TOKEN": "123:abc"}},
        "b": {"healthcheck": {"disable": True}, "cap_drop": ["ALL"],
              "restart": "unless-stopped", "depends_on": {"a": {"condition": "service_started"}}},
    }}
    problems = "\n".join(compose_policy_problems(bad))
    for expected in ("port 8080:8080", "port 0.0.0.0:9090:9090", "a: no healthcheck",
                     "restart policy 'no'", "a: does not drop", "depends_on without",
                     "BOT_TOKEN has a literal", "b: no healthcheck",
                     "without condition service_healthy"):
        assert expected in problems


def test_the_stack_wiring():
    doc = rendered(BASE)
    services = doc["services"]
    assert set(services) == {"torchserve", "bot", "redis", "prometheus"}
    assert services["bot"]["depends_on"]["torchserve"]["condition"] == "service_healthy"
    assert services["redis"]["profiles"] == ["redis"]
    assert doc["networks"]["backend"]["internal"] is True
    # the management (8081) and metrics (8082) APIs are never published
    assert [p.split(":")[-1] for p in services["torchserve"]["ports"]] == ["8080"]
    assert "ports" not in services["bot"] and "ports" not in services["redis"]
    # the model store and the logs have volumes; the webhook override publishes on loopback
    webhook = rendered(BASE, ROOT / "deploy/compose.webhook.yml", extra=WEBHOOK_ENV)
    assert webhook["services"]["bot"]["ports"] == ["127.0.0.1:8088:8080"]
    store = rendered(BASE, ROOT / "deploy/compose.model-store.yml")
    assert "./model_store:/home/model-server/model-store:ro" in \
        store["services"]["torchserve"]["volumes"]


def test_webhook_override_refuses_to_start_without_its_secrets():
    with pytest.raises(InterpolationError, match="WEBHOOK_URL"):
        rendered(BASE, ROOT / "deploy/compose.webhook.yml")


def test_inference_key_is_handed_over_through_a_group_readable_tmpfs_volume():
    doc = rendered(BASE)
    ts, bot = doc["services"]["torchserve"], doc["services"]["bot"]
    dockerfile = (ROOT / "docker/torchserve.Dockerfile").read_text(encoding="utf-8")
    gid = re.search(r"groupadd --gid (\d+) model-server", dockerfile).group(1)
    export = ts["environment"]["TORCHSERVE_KEY_EXPORT"]
    assert bot["environment"]["TS_KEY_FILE"] == export
    assert "ts-keys:/run/torchserve-keys" in ts["volumes"]
    assert "ts-keys:/run/torchserve-keys:ro" in bot["volumes"]
    assert os.path.dirname(export) == "/run/torchserve-keys"
    assert bot["group_add"] == [gid]
    volume = doc["volumes"]["ts-keys"]["driver_opts"]
    assert volume["type"] == "tmpfs" and f"gid={gid}" in volume["o"] and "mode=0750" in volume["o"]
    # the full key file (management and token-API keys too) stays in a private tmpfs
    assert any(t.startswith("/home/model-server/run:") and "mode=0700" in t
               for t in ts["tmpfs"])
    # no key in any environment variable
    assert "TS_INFERENCE_KEY" not in bot["environment"]


def test_bot_environment_names_are_settings_the_bot_reads():
    known = bot_setting_names()
    for paths in ([BASE], [BASE, ROOT / "deploy/compose.webhook.yml"]):
        env = rendered(*paths, extra=WEBHOOK_ENV)["services"]["bot"]["environment"]
        assert set(env) - known == set()


def test_prometheus_scrapes_the_ports_the_services_listen_on():
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text(encoding="utf-8"))
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0]
               for job in config["scrape_configs"]}
    props = (ROOT / "deploy/config.properties").read_text(encoding="utf-8")
    metrics_port = re.search(r"^metrics_address=http://0\.0\.0\.0:(\d+)$", props, re.M).group(1)
    assert re.search(r"^metrics_mode=prometheus$", props, re.M)
    assert targets["torchserve"] == f"torchserve:{metrics_port}"
    bot_env = rendered(BASE)["services"]["bot"]["environment"]
    assert targets["bot"] == f"bot:{bot_env['METRICS_PORT']}"


def test_every_variable_is_documented_in_env_example_and_dotenv_is_ignored():
    documented = set(env_example())
    for path in COMPOSE_FILES:
        missing = variables(path.read_text(encoding="utf-8")) - documented
        assert missing == set(), f"{path.name} uses undocumented {sorted(missing)}"
    assert env_example()["BOT_TOKEN"] == ""
    for ignore in (".gitignore", ".dockerignore"):
        lines = (ROOT / ignore).read_text(encoding="utf-8").splitlines()
        assert ".env" in lines and "key_file.json" in lines


def test_no_credentials_in_deployment_files():
    files = [*COMPOSE_FILES, ROOT / ".env.example", ROOT / "deploy/config.properties",
             ROOT / "deploy/prometheus.yml", *(ROOT / "deploy/k8s").glob("*.yaml")]
    for path in files:
        assert secret_problems(path.read_text(encoding="utf-8")) == [], path.name
    assert secret_problems("BOT_TOKEN=123456789:AAHfZ2p3q4r5s6t7u8v9w0xYzAbCdEfGhIj")


def test_redis_gets_its_password_on_stdin_not_in_argv(tmp_path: Path):
    """Run the redis service's command with dash against a fake redis-server."""
    command = rendered(BASE)["services"]["redis"]["command"]
    assert command[:2] == ["sh", "-c"]
    fake = tmp_path / "redis-server"
    fake.write_text('#!/bin/sh\necho "argv: $*"\necho "stdin: $(cat)"\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "REDIS_PASSWORD": "pw_123-abc"}
    done = subprocess.run(["/bin/sh", "-c", command[2]], env=env, capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    argv_line, stdin_line = done.stdout.splitlines()
    assert argv_line == "argv: - --appendonly yes --maxmemory 112mb --maxmemory-policy volatile-lfu"
    assert stdin_line == 'stdin: requirepass "pw_123-abc"'
    done = subprocess.run(["/bin/sh", "-c", command[2]], capture_output=True, text=True,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, timeout=10)
    assert done.returncode == 1 and "REDIS_PASSWORD" in done.stderr
