# syntax=docker/dockerfile:1
# The Telegram bot (the `bot` service of docker-compose.yml).
#
#   docker build -f docker/bot.Dockerfile -t image-styling/bot .
#
# Why it is small (estimated ~170 MB unpacked: the ~130 MB python:3.11-slim base plus ~36 MB
# of packages, measured by docker/image_sizes.py; docs/deployment.md): the bot never runs the
# model. It only moves bytes between Telegram and TorchServe's REST API, so it needs aiogram,
# aiohttp, redis, python-dotenv and prometheus-client (the `bot` extra of pyproject.toml) and
# no torch, numpy, Pillow, Java or TorchServe (those ~1.2 GB live only in the TorchServe
# image). Image sizes are read by the bot's own header parsing (bot/imageinfo.py).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# the bot extra pinned, with hashes, by requirements/bot.lock (scripts/lock.sh)
COPY requirements/bot.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r bot.lock

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="image-styling Telegram bot" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10002 bot \
    && useradd --uid 10002 --gid 10002 --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin bot
COPY --from=build /opt/venv /opt/venv
COPY bot/ /app/bot/
# the TorchServe client (stdlib only) the bot and its health check share
COPY tsclient/ /app/tsclient/
COPY docker/entrypoint-bot.sh /usr/local/bin/entrypoint-bot.sh
COPY docker/healthcheck.py /usr/local/lib/image-styling/healthcheck.py
# Container defaults: JSON logs; the metrics endpoint listens on the container's interfaces
# (only the compose network or the pod network reach them; nothing is published by default).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_JSON=true \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464
USER 10002:10002
WORKDIR /app
# 8080 webhook (when WEBHOOK_URL is set, with WEBHOOK_HOST=0.0.0.0 WEBHOOK_PORT=8080), 9464 metrics
EXPOSE 8080 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/image-styling/healthcheck.py", "bot"]
ENTRYPOINT ["/usr/local/bin/entrypoint-bot.sh"]
