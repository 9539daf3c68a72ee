"""Issue 14 in the containers: the Docker image, Compose and Kubernetes serve the clip model
``msgnet_clip`` beside ``msgnet``, built and configured as scripts/serve.sh does on a host
(scripts/clip_model.py), and the bot sends clips to it. Checked from the files: no Docker
engine here."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from deploy_checks import ROOT, k8s_documents
from test_deploy_compose import BASE, rendered
from test_deploy_dockerfiles import stages

import tsclient
from bot.config import Settings
from scripts import clip_model

DEPLOY_CONFIG = ROOT / "deploy" / "config.properties"


def load_models() -> dict[str, str]:
    entries = tsclient.read_properties(DEPLOY_CONFIG)["load_models"].split(",")
    return dict(entry.strip().split("=", 1) for entry in entries)


def test_the_container_config_loads_both_models():
    assert load_models() == {"msgnet": "msgnet.mar",
                             clip_model.CLIP_MODEL: f"{clip_model.CLIP_MODEL}.mar"}


def test_the_image_builds_the_clip_archive_from_the_same_weights():
    text = (ROOT / "docker" / "torchserve.Dockerfile").read_text(encoding="utf-8")
    mar = next(s for s in stages(text) if re.match(r"FROM \S+ AS mar$", s, re.M))
    run = " ".join(next(line for line in mar.splitlines()
                        if line.startswith("RUN ") and "build_mar" in line).split())
    photo = run.index("-m scripts.build_mar --weights \"${WEIGHTS}\" --output-dir /out")
    clip = run.index("-m scripts.clip_model build --weights \"${WEIGHTS}\" --output-dir /out")
    # both inside the one `if WEIGHTS` branch, with the same version flag
    assert run.index('if [ -n "${WEIGHTS}" ]; then') < photo < clip < run.rindex("; fi")
    assert run.count('${MODEL_VERSION:+--version "${MODEL_VERSION}"}') == 3  # + msgnet_learn
    # the store the runtime stage copies is /out, where both archives land
    assert "COPY --from=mar /out/ /home/model-server/model-store/" in stages(text)[-1]


def test_the_clip_archive_config_is_the_hosts(tmp_path: Path):
    """What the image builds is what serve.sh builds: the photo config with the clip
    overrides (batch 1, its own queue, long timeouts, one thread)."""
    cfg = yaml.safe_load(clip_model.write_clip_config(tmp_path / "c.yaml").read_text())
    assert cfg["batchSize"] == 1 and cfg["maxWorkers"] == 1
    assert cfg["responseTimeout"] == clip_model.CLIP_RESPONSE_TIMEOUT_S
    assert cfg["clientTimeoutInMills"] == clip_model.CLIP_DEADLINE_S * 1000
    assert cfg["handler"]["threads"] == clip_model.CLIP_THREADS == 1
    assert "scripts.clip_model build" in (ROOT / "scripts" / "serve.sh").read_text()


def test_compose_and_kubernetes_send_clips_to_the_clip_model():
    bot_default = Settings.model_fields["ts_clip_model"].default
    assert bot_default == clip_model.CLIP_MODEL
    env = rendered(BASE)["services"]["bot"]["environment"]
    assert env["TS_CLIP_MODEL"] == clip_model.CLIP_MODEL in load_models()
    config = next(doc for _, doc in k8s_documents()
                  if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "bot-config")
    assert config["data"]["TS_CLIP_MODEL"] == clip_model.CLIP_MODEL
    # the Kubernetes pods run the image as built, with its config: no load_models override
    ts = next(doc for _, doc in k8s_documents()
              if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "torchserve")
    names = {e["name"] for e in ts["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert "TS_LOAD_MODELS" not in names
    assert "TS_LOAD_MODELS" not in rendered(BASE)["services"]["torchserve"]["environment"]
