"""The handler's metrics as TorchServe's own metrics cache emits them (issue 41, item 10):
``StylizeInferenceTime`` is a histogram in seconds, so Prometheus keeps every batch in its
buckets (p50/p95 over a window) instead of a gauge's last value."""

from __future__ import annotations

import logging

import pytest

from handler import metrics as hm

ts_cache = pytest.importorskip("ts.metrics.metric_cache_yaml_impl")
TS_METRICS_YAML = ts_cache.__file__.rsplit("/metrics/", 1)[0] + "/configs/metrics.yaml"


@pytest.fixture
def emitted(caplog) -> list[str]:
    """The ``[METRICS]`` lines TorchServe's worker-side cache logs (what the frontend parses)."""
    caplog.set_level(logging.INFO)
    cache = ts_cache.MetricsCacheYamlImpl(TS_METRICS_YAML)
    cache.initialize_cache()
    recorder = hm.HandlerMetrics(cache, "msgnet")
    recorder.batch(size=3, inference_ms=1234.5, megapixels=0.75, cache_hits=1, cache_misses=2)
    return [r.getMessage() for r in caplog.records if "[METRICS]" in r.getMessage()]


def line(lines: list[str], name: str) -> str:
    found = [item for item in lines if f"[METRICS]{name}." in item]
    assert len(found) == 1, (name, lines)
    return found[0]


def test_inference_time_is_a_histogram_in_seconds(emitted):
    item = line(emitted, hm.INFERENCE_TIME)
    assert "#type:HISTOGRAM" in item
    # 1234.5 ms as seconds: inside the default buckets (5 ms .. 10 s), not in +Inf
    assert f"[METRICS]{hm.INFERENCE_TIME}.Seconds:1.2345|" in item
    assert hm.DEFAULT_BUCKETS_S[0] < 1.2345 < hm.DEFAULT_BUCKETS_S[-1]
    assert "ModelName:msgnet" in item


def test_the_other_metrics_keep_their_types(emitted):
    assert "#type:GAUGE" in line(emitted, hm.BATCH_SIZE)
    for name in (hm.MEGAPIXELS, hm.CACHE_HITS, hm.CACHE_MISSES):
        assert "#type:COUNTER" in line(emitted, name)

