"""Helpers of the deployment tests: Compose interpolation, schema validation and the project's
own policy checks, written as functions that return problems so a test can also show that a
bad file is caught (a check that cannot fail proves nothing).

No Docker engine runs here, so ``docker compose config`` is not available; ``interpolate``
implements the Compose Specification's variable syntax, enough for our files.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = [ROOT / "docker-compose.yml", *sorted((ROOT / "deploy").glob("compose.*.yml"))]
K8S_DIR = ROOT / "deploy" / "k8s"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME, and $$
_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}"
                  r"|([A-Za-z_][A-Za-z0-9_]*))")

# a Telegram bot token (digits:35 url-safe chars) or a long hex/base64 blob
SECRET_PATTERNS = [re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"),
                   re.compile(r"(?i)(password|secret|token|key)\s*[:=]\s*['\"]?[A-Za-z0-9+/_-]{16,}")]


# environment variables that hold a credential (not *_FILE paths, not TS_DISABLE_TOKEN_...)
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|_KEY)$")


# a value that is one ${VAR...} reference and nothing else
_WHOLE_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?+-][^}]*)?\}")


class InterpolationError(ValueError):
    """A ``${VAR:?message}`` whose variable is unset, as ``docker compose`` would report."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Substitute variables like Compose does; ``$$`` becomes a literal ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(5)
        op, arg = match.group(3), match.group(4) or ""
        value = env.get(name)
        if op in (":-", "-"):
            unset = value is None or (op == ":-" and value == "")
            return interpolate(arg, env) if unset else value
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise InterpolationError(f"{name}: {arg}")
            return value
        if op in (":+", "+"):
            present = value is not None and (op == "+" or value != "")
            return interpolate(arg, env) if present else ""
        return value or ""

    return _VAR.sub(sub, text)


def variables(text: str) -> set[str]:
    """Names of the variables a Compose file uses (not ``$$`` escapes)."""
    names = set()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for match in _VAR.finditer(code):
        if not match.group(1):
            names.add(match.group(2) or match.group(5))
    return names


def env_example() -> dict[str, str]:
    """The variables of .env.example (comments and blank lines skipped)."""
    env = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def load_compose(path: Path, env: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(interpolate(path.read_text(encoding="utf-8"), env))


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings merge, sequences of ports/volumes add."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override


@cache
def compose_schema() -> dict[str, Any]:
    """The Compose Specification JSON schema as vendored by check-jsonschema (its license:
    check_jsonschema/builtin_schemas/vendor/licenses/LICENSE.compose-spec, Apache-2.0)."""
    files = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(files.joinpath("compose-spec.json").read_text(encoding="utf-8"))


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(document)]


# ---------------------------------------------------------------- project policy for compose

def published_ports(service: dict[str, Any]) -> list[str]:
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append(f"{port.get('host_ip', '')}:{port.get('published', '')}:"
                         f"{port.get('target')}")
        else:
            ports.append(str(port))
    return ports


def compose_policy_problems(doc: dict[str, Any]) -> list[str]:
    """Our rules for a (merged, interpolated) compose document."""
    problems = []
    services = doc.get("services", {})
    for name, service in services.items():
        for port in published_ports(service):
            if not port.startswith("127.0.0.1:"):
                problems.append(f"{name}: port {port} is not published on 127.0.0.1 only")
        if "healthcheck" not in service or service["healthcheck"].get("disable"):
            problems.append(f"{name}: no healthcheck")
        if service.get("restart") not in ("unless-stopped", "always", "on-failure"):
            problems.append(f"{name}: restart policy {service.get('restart')!r}")
        if service.get("privileged"):
            problems.append(f"{name}: privileged")
        if "ALL" not in service.get("cap_drop", []):
            problems.append(f"{name}: does not drop all capabilities")
        if service.get("network_mode") == "host":
            problems.append(f"{name}: host network")
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            problems.append(f"{name}: depends_on without conditions")
            depends = {}
        for other, rule in depends.items():
            if other not in services:
                problems.append(f"{name}: depends on unknown service {other}")
            if rule.get("condition") != "service_healthy":
                problems.append(f"{name}: depends on {other} without condition service_healthy")
        env = service.get("environment", {})
        if isinstance(env, list):
            env = dict(item.partition("=")[::2] for item in env)
        for key, value in env.items():
            if SECRET_NAME.search(key) and value not in (None, "") \
                    and not _WHOLE_VAR.fullmatch(str(value)):
                problems.append(f"{name}: {key} has a literal value in the compose file")
    return problems


def secret_problems(text: str) -> list[str]:
    """Lines that look like a real credential."""
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        if any(p.search(line) for p in SECRET_PATTERNS) and "REPLACE-WITH" not in line:
            hits.append(f"line {number}: {line.strip()[:60]}")
    return hits


# ------------------------------------------------------------------------------- Kubernetes

def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path, doc))
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    return None


def workload_problems(doc: dict[str, Any]) -> list[str]:
    """Probes, resources and a locked-down security context for every container."""
    spec = pod_spec(doc)
    if spec is None:
        return []
    name = doc["metadata"]["name"]
    problems = []
    pod_sc = spec.get("securityContext", {})
    if not pod_sc.get("runAsNonRoot"):
        problems.append(f"{name}: pod may run as root")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: no RuntimeDefault seccomp profile")
    for container in spec["containers"]:
        cname = f"{name}/{container['name']}"
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                problems.append(f"{cname}: no {probe}")
        resources_ = container.get("resources", {})
        for part in ("requests", "limits"):
            if "memory" not in resources_.get(part, {}):
                problems.append(f"{cname}: no memory {part}")
        if "cpu" not in resources_.get("requests", {}):
            problems.append(f"{cname}: no cpu request")
        sc = container.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cname}: privilege escalation allowed")
        if not sc.get("readOnlyRootFilesystem"):
            problems.append(f"{cname}: writable root file system")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{cname}: capabilities not dropped")
        image = container.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problems.append(f"{cname}: image {image!r} has no fixed tag")
        for env in container.get("env", []):
            if SECRET_NAME.search(env["name"]) and "value" in env:
                problems.append(f"{cname}: {env['name']} has a literal value")
    return problems


def bot_setting_names() -> set[str]:
    """Environment variables bot/config.py reads (so a typo in a manifest is caught): its
    settings' names, or their aliases, upper-cased as pydantic-settings matches them."""
    from bot.config import Settings

    return {str(field.validation_alias or name).upper()
            for name, field in Settings.model_fields.items()}
