# syntax=docker/dockerfile:1
# TorchServe 0.12 serving MSG-Net (the `torchserve` service of docker-compose.yml).
#
#   docker build -f docker/torchserve.Dockerfile -t image-styling/torchserve .
#   docker build -f docker/torchserve.Dockerfile --build-arg WEIGHTS=weights/21styles.model .
#   docker build -f docker/torchserve.Dockerfile --build-arg WEIGHTS= .   # mount a model store
#   docker build -f docker/torchserve.Dockerfile --build-arg TORCH_VARIANT=cu128 .   # GPU
#
# Stages: `build` makes a venv with the model/serve extras pinned, with hashes, by
# requirements/serve.lock (scripts/lock.sh makes it from pyproject.toml), then torch from the
# PyTorch wheel index of TORCH_VARIANT (cpu: no CUDA libraries, ~750 MB instead of several GB);
# `mar` runs scripts.build_mar on the weights in the build context, so the
# archive is made exactly as on a host; the runtime stage adds a JDK 17 runtime and runs as
# an unprivileged user. docs/deployment.md has the estimated size of each part.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# cpu, or a CUDA variant the PyTorch index has for this torch version (e.g. cu126, cu128):
# the CUDA wheels bring their own CUDA runtime, so the base image stays the same.
# TORCH_VERSION: requirements/torch-cpu.txt's (a test keeps them equal)
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/serve.lock ./
# the lock first: torch's own dependencies are in it, so the torch step adds only torch (and,
# for a CUDA variant, the nvidia-* wheels that torch build pins exactly)
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r serve.lock \
    && /opt/venv/bin/pip install --no-cache-dir \
        --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "torch==${TORCH_VERSION}"

FROM build AS mar
# Weights file inside the build context (ours by default, or the authors' 21styles.model).
# Empty: no archive in the image; mount a model store instead (deploy/compose.model-store.yml).
ARG WEIGHTS=weights/msgnet-21styles.pt
ARG MODEL_VERSION=
# the whole context as filtered by .dockerignore: weights/ and presets/ may or may not exist
COPY . /src/
# msgnet.mar for photos and msgnet_clip.mar, the same weights and handler with the clip
# model's config (batch 1, long timeouts, one thread): clips get a worker of their own, as
# scripts/serve.sh does on a host (deploy/config.properties loads both); and msgnet_learn.mar,
# which the entrypoint loads when the VGG16 file and the photos to learn on are mounted
RUN mkdir -p /out \
    && if [ -n "${WEIGHTS}" ]; then \
        /opt/venv/bin/python -m scripts.build_mar --weights "${WEIGHTS}" --output-dir /out \
            ${MODEL_VERSION:+--version "${MODEL_VERSION}"} \
        && /opt/venv/bin/python -m scripts.clip_model build --weights "${WEIGHTS}" \
            --output-dir /out ${MODEL_VERSION:+--version "${MODEL_VERSION}"} \
        && /opt/venv/bin/python -m scripts.learn_model build --weights "${WEIGHTS}" \
            --output-dir /out ${MODEL_VERSION:+--version "${MODEL_VERSION}"} \
        && rm -f /out/msgnet_clip-config.yaml /out/msgnet_learn-config.yaml; \
    fi

FROM ${PYTHON_IMAGE} AS runtime
ARG TORCH_VARIANT=cpu
LABEL org.opencontainers.image.title="image-styling TorchServe (MSG-Net)" \
      org.opencontainers.image.description="TorchServe 0.12 + MSG-Net handler, torch ${TORCH_VARIANT}" \
      org.opencontainers.image.licenses="MIT"
# JDK 17 runtime for the TorchServe frontend; tini as PID 1 forwards signals to the group.
# Debian package versions are not pinned: the point release's security updates should land
# on every rebuild (pin the base image digest for byte-for-byte rebuilds).
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/*
# styles/: the style store's mount point, owned by the server's user (a new named volume takes
# its owner from it); learn/: where the VGG16 file and photos to learn on are mounted
RUN groupadd --gid 10001 model-server \
    && useradd --uid 10001 --gid 10001 --home-dir /home/model-server --create-home \
        --shell /usr/sbin/nologin model-server \
    && mkdir -p /home/model-server/model-store /home/model-server/logs \
        /home/model-server/run /run/torchserve-keys /opt/msgnet/docker /opt/msgnet/scripts \
        /home/model-server/styles /home/model-server/learn \
    && chown model-server:model-server /home/model-server/logs /home/model-server/run \
        /run/torchserve-keys /home/model-server/styles \
    && chmod 0750 /home/model-server/run /run/torchserve-keys
COPY --from=build /opt/venv /opt/venv
COPY --from=mar /out/ /home/model-server/model-store/
COPY deploy/config.properties /home/model-server/config.properties
COPY docker/entrypoint-torchserve.sh /usr/local/bin/entrypoint-torchserve.sh
COPY docker/healthcheck.py docker/ts_keys.py /opt/msgnet/docker/
# the TorchServe client (keys, calls) of the health check, the key renewal and the
# version-management tools, for `docker compose exec torchserve python -m scripts.ts_models
# list` (the tsclient and scripts packages, importable through PYTHONPATH)
COPY tsclient/ /opt/msgnet/tsclient/
COPY scripts/__init__.py scripts/ts_models.py /opt/msgnet/scripts/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/msgnet \
    PYTHONUNBUFFERED=1 \
    LOG_LOCATION=/home/model-server/logs \
    METRICS_LOCATION=/home/model-server/logs \
    TS_CONFIG=/home/model-server/config.properties \
    TS_KEY_FILE=/home/model-server/run/key_file.json
USER 10001:10001
WORKDIR /home/model-server
# 8080 inference, 8081 management, 8082 Prometheus metrics
EXPOSE 8080 8081 8082
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "/opt/msgnet/docker/healthcheck.py", "torchserve"]
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/entrypoint-torchserve.sh"]
