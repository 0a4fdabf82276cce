"""JSON logs carrying the request id (HTTP) and the event id (consumers)."""

from __future__ import annotations

import logging
import sys

from asgi_correlation_id import correlation_id
from pythonjsonlogger.json import JsonFormatter


class ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        from shared.consumer import current_event_id

        record.service = self.service
        record.request_id = correlation_id.get()
        record.event_id = current_event_id.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s "
            "%(service)s %(request_id)s %(event_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(ContextFilter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_kehu", False):
            root.removeHandler(existing)
    handler._kehu = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request at INFO (the API's readiness asks its worker on each probe);
    # the callers log what matters about their calls themselves.
    logging.getLogger("httpx").setLevel(logging.WARNING)
