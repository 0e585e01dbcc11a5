"""From HTTP bodies to the `Draft`s the model scores, and from failures to answers that name the field.

A request body (JSON with base64 images, or multipart/form-data with the image as a file) is checked
against `engage.serving.schemas`, its images are base64-decoded, and it becomes one `Draft` per draft.
Anything wrong raises `RequestError` with an HTTP status and `(field, message)` pairs; messages describe
the problem and never repeat the submitted values (captions and photos are private until posted).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from engage.model.draft import Draft
from engage.serving.schemas import CompareRequest, DraftIn, ScoreRequest

#: Form fields that are left out when sent empty (an HTML form sends every field).
_OPTIONAL_FORM_FIELDS = ("posted_at", "followers", "sponsored", "history", "image")


class RequestError(Exception):
    """A request that cannot be answered as asked: an HTTP status and the fields at fault."""

    def __init__(self, status: int, problems: Sequence[tuple[str | None, str]], headers: dict[str, str] | None = None):
        self.status = status
        self.problems = list(problems)
        self.headers = headers or {}
        super().__init__("; ".join(f"{f or 'request'}: {m}" for f, m in self.problems))

    def body(self) -> dict[str, Any]:
        details = [{"field": field, "message": message} for field, message in self.problems]
        return {"error": details[0] if len(details) == 1 else details}


def field_name(loc: Iterable[str | int], prefix: str = "") -> str:
    """A pydantic location as a client writes it: ("history", 3, "likes") -> "history[3].likes"."""
    name = prefix
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name and not name.endswith(".") else str(part)  # a prefix ends in "."
    return name or "body"


_FRIENDLIER = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request; remove it (see /docs)",
}


def validation_problems(error: ValidationError, prefix: str = "") -> list[tuple[str | None, str]]:
    """pydantic's errors without the submitted input (pydantic's own messages never quote it)."""
    problems: list[tuple[str | None, str]] = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        loc = [p for p in item["loc"] if p != "body"]
        problems.append((field_name(loc, prefix), _FRIENDLIER.get(item["type"], item["msg"])))
    return problems


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise RequestError(422, [("body", "is empty; send a JSON object with the draft's fields (see /docs)")])
    try:
        value = json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(422, [("body", "is not UTF-8 text; send JSON encoded as UTF-8")]) from None
    except json.JSONDecodeError as e:
        raise RequestError(422, [("body", f"is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")]) from None
    except RecursionError:
        raise RequestError(422, [("body", "is nested too deeply to be a draft")]) from None
    if not isinstance(value, dict):
        raise RequestError(422, [("body", f"must be a JSON object with the draft's fields, not a JSON {type(value).__name__}")])
    return value


def validate_body(schema: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise RequestError(422, validation_problems(e)) from None


def decode_image(text: str, field: str) -> bytes:
    """base64 text (or a data: URL) -> the file's bytes; 400 naming `field` if it is not base64."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise RequestError(400, [(field, "is a data: URL that is not base64-encoded; send data:image/jpeg;base64,...")])
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, [(field, "is not valid base64; send the JPEG, PNG or WebP file's bytes base64-encoded, "
                                         "or upload the file as multipart/form-data")]) from None
    if not raw:
        raise RequestError(400, [(field, "is empty; leave the field out to score a draft without a photo")])
    return raw


def build_draft(account: str, fields: DraftIn, *, prefix: str = "", image: bytes | None = None) -> Draft:
    """The model's `Draft` for validated request fields; `image` (bytes from an upload) wins over `fields.image`."""
    if image is None and fields.image is not None:
        image = decode_image(fields.image, f"{prefix}image")
    history = None
    if fields.history is not None:
        history = [
            {"caption": h.caption, "posted_at": h.posted_at, "likes": h.likes, "comments": h.comments,
             "image": decode_image(h.image, f"{prefix}history[{i}].image") if h.image is not None else None}
            for i, h in enumerate(fields.history)
        ]
    try:
        return Draft(account=account, caption=fields.caption, image=image, posted_at=fields.posted_at,
                     followers=fields.followers, sponsored=fields.sponsored, history=history)
    except ValidationError as e:
        raise RequestError(422, validation_problems(e, prefix)) from None


def score_request_from_json(body: bytes) -> Draft:
    request = validate_body(ScoreRequest, parse_json_object(body))
    return build_draft(request.account, request)


def compare_request_from_json(body: bytes) -> tuple[CompareRequest, list[Draft]]:
    request = validate_body(CompareRequest, parse_json_object(body))
    drafts = [build_draft(request.account, d, prefix=f"drafts[{i}].") for i, d in enumerate(request.drafts)]
    return request, drafts


def score_request_from_form(fields: dict[str, list[Any]], read_file: Callable[[Any], bytes]) -> Draft:
    """A multipart form (field -> values; files read with `read_file`) -> Draft. History is a JSON string field."""
    data: dict[str, Any] = {}
    image: bytes | None = None
    for name, values in fields.items():
        if len(values) > 1:
            raise RequestError(422, [(name, f"was sent {len(values)} times; send it once")])
        value = values[0]
        if not isinstance(value, str):  # an uploaded file
            if name != "image":
                raise RequestError(422, [(name, "must be a text field; only `image` may be a file")])
            image = read_file(value)
            if not image:
                raise RequestError(400, [("image", "is an empty file")])
            continue
        if name in _OPTIONAL_FORM_FIELDS and not value.strip():
            continue
        if name == "history":
            try:
                data[name] = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                raise RequestError(422, [("history", "must be a JSON array of posts (caption, image, posted_at, "
                                                     "likes, comments)")]) from None
            continue
        data[name] = value
    request = validate_body(ScoreRequest, data)
    return build_draft(request.account, request, image=image)
