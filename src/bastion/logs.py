"""Where log lines go and what they look like: text (default) or one JSON object per line.

Every line written while a request is served carries its id (``bastion.requestid``):
``request_id`` in JSON, ``[id]`` after the logger's name in text. JSON lines hold
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``pid``, ``request_id`` when
there is one, the access log's fields (``ACCESS_FIELDS``) and ``exception`` (the traceback).
Other attributes a library attaches to its records are not copied: only fields named
here reach a line. Secrets never do: Bastion's code does not log them, and a database
error in a traceback is printed without the values it quotes (``storage.redact``: no
parameters, no ``DETAIL`` with a key or a failing row).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from bastion import requestid
from bastion.storage.redact import redact_database_errors
from bastion.text import PrintableFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s"
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "client")


class TextFormatter(PrintableFormatter):
    """Text lines whose message cannot forge a line or rewrite a terminal."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        found = requestid.current()
        record.request = f" [{found}]" if found else ""
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        redact_database_errors(ei[1])
        return super().formatException(ei)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker of ``--workers N``
        }
        found = requestid.current()
        if found is not None:
            entry["request_id"] = found
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()

    def formatException(self, ei: Any) -> str:
        redact_database_errors(ei[1])
        return super().formatException(ei)


def configure_logging(*, level: str, log_format: Literal["text", "json"]) -> None:
    """Send every logger's lines (uvicorn's too, when it is told not to configure its
    own: ``uvicorn_log_config``) to stderr in ``log_format``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # At INFO SQLAlchemy logs statements, at DEBUG result rows (hashes, sealed seeds): never.
    for noisy in ("alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def uvicorn_log_config(log_format: Literal["text", "json"]) -> dict[str, Any]:
    """uvicorn's options for its logging: its own text lines, or none of its own (its
    records then reach the JSON handler above)."""
    return {"log_config": None} if log_format == "json" else {}
