"""Request bodies shared by the routers: JSON or form, size-capped, never a 500."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from pydantic import AfterValidator, BaseModel, ConfigDict

from bastion.errors import ValidationError
from bastion.text import why_unsafe

FORM = "application/x-www-form-urlencoded"


def _plain(value: str) -> str:
    """``bastion.text.check_name`` for a body field (pydantic names the field)."""
    reason = why_unsafe(value)
    if reason is not None:
        raise ValueError(reason)
    return value


# A name people choose (a factor's, a service account's, a role's name or description):
# refused with a 422 naming the field when it holds a control character (issue 11.11).
Name = Annotated[str, AfterValidator(_plain)]


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
