"""Request bodies shared by the routers: JSON or form, size-capped, never a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from pydantic import BaseModel, ConfigDict

from bastion.errors import ValidationError

FORM = "application/x-www-form-urlencoded"


class StrictBody(BaseModel):
    """Base of every JSON body: unknown fields are refused with a 422."""

    model_config = ConfigDict(extra="forbid", str_max_length=4096)


async def json_or_form(request: Request) -> dict[str, Any]:
    """The body as a flat dict, from JSON or an urlencoded form (RFC 6749, RFC 7009)."""
    raw = await request.body()
    if not raw:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == FORM:
        try:
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ValidationError("The form body is not valid UTF-8.") from None
        return {key: values[-1] for key, values in parsed.items()}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError("The body is neither valid JSON nor a form.") from None
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object.")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"'{name}' is required.", field=name)
        return None
    if not isinstance(value, str) or len(value) > 8192:
        raise ValidationError(f"'{name}' must be a string.", field=name)
    return value
