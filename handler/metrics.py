"""Custom metrics of the MSG-Net handler, through TorchServe's metrics API.

The worker logs each value as a ``[METRICS]`` line; the frontend turns it into a Prometheus
series (config.properties sets ``metrics_mode=prometheus`` and
``model_metrics_auto_detect=true``, so no metrics YAML has to list these names). Names are
stable: dashboards and docs/serving.md use them.

``StylizeInferenceTime`` is a histogram, so Prometheus can give its p50/p95 over any window (a
gauge keeps only the last batch). TorchServe 0.12 builds every histogram with the Prometheus
client's default buckets (5 ms to 10 s, ``le`` in the metric's unit) and has no setting to
change them, so the time is recorded in seconds: in milliseconds every batch would fall in the
``+Inf`` bucket.
"""

from __future__ import annotations

import logging
from typing import Any

from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes

log = logging.getLogger(__name__)

CACHE_HITS = "StyleCacheHits"
CACHE_MISSES = "StyleCacheMisses"
INFERENCE_TIME = "StylizeInferenceTime"
MEGAPIXELS = "StylizeMegapixels"
BATCH_SIZE = "StylizeBatchSize"
REQUEST_ERRORS = "StylizeRequestErrors"
ALL_METRICS = (CACHE_HITS, CACHE_MISSES, INFERENCE_TIME, MEGAPIXELS, BATCH_SIZE, REQUEST_ERRORS)
# a distribution (p50/p95 per window), not the last batch's value; recorded in seconds
INFERENCE_TIME_TYPE = MetricTypes.HISTOGRAM
# the Prometheus client's default buckets, the only ones TorchServe 0.12 uses (seconds here)
DEFAULT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                     10.0)


class HandlerMetrics:
    """Thin wrapper that fixes names, units, types and dimensions of our metrics."""

    def __init__(self, metrics: Any, model_name: str):
        self._metrics = metrics
        self._model = model_name

    def _dims(self, **extra: str) -> list[Dimension]:
        dims = [Dimension("ModelName", self._model), Dimension("Level", "Model")]
        dims += [Dimension(k, v) for k, v in extra.items()]
        return dims

    def _add(self, name: str, value: float, unit: str, kind: MetricTypes, **dims: str) -> None:
        if self._metrics is None:
            return
        try:
            self._metrics.add_metric(name, value, unit, None, self._dims(**dims), kind)
        except Exception:  # metrics must never fail a prediction
            log.warning("could not record metric %s", name, exc_info=True)

    def batch(self, *, size: int, inference_ms: float, megapixels: float, cache_hits: int,
              cache_misses: int) -> None:
        """Record one handled batch (every request in it, good or bad)."""
        self._add(BATCH_SIZE, size, "Count", MetricTypes.GAUGE)
        self._add(INFERENCE_TIME, round(inference_ms / 1000.0, 4), "s", INFERENCE_TIME_TYPE)
        self._add(MEGAPIXELS, round(megapixels, 4), "Megapixels", MetricTypes.COUNTER)
        self._add(CACHE_HITS, cache_hits, "Count", MetricTypes.COUNTER)
        self._add(CACHE_MISSES, cache_misses, "Count", MetricTypes.COUNTER)

    def request_error(self, code: str) -> None:
        self._add(REQUEST_ERRORS, 1, "Count", MetricTypes.COUNTER, Code=code)
