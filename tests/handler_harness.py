"""The TorchServe handler driven in process by a fake TorchServe context (unit tests)."""

from __future__ import annotations

from pathlib import Path

from ts.context import Context, RequestProcessor

from handler.msgnet_handler import MsgnetHandler


class NullMetrics:
    def add_metric(self, *args, **kwargs) -> None:
        pass


def serve(directory: Path, weights: str, config: dict, batch_size: int = 4
          ) -> tuple[MsgnetHandler, Context]:
    """An initialised handler for ``directory/weights`` with ``config`` as model-config.yaml."""
    manifest = {"model": {"modelName": "msgnet", "serializedFile": weights,
                          "modelVersion": "1.0", "handler": "msgnet_handler.py"}}
    context = Context("msgnet", str(directory), manifest, batch_size, None, "0.12.0",
                      metrics=NullMetrics(), model_yaml_config=config)
    handler = MsgnetHandler()
    handler.initialize(context)
    return handler, context


def handle(served: tuple[MsgnetHandler, Context], batch: list[dict]):
    handler, context = served
    context.request_processor = [RequestProcessor({}) for _ in batch]
    return handler.handle(batch, context), context
