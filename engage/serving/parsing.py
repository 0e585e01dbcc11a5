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
import math
import typing
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from engage.data.schema import INSIGHT_COUNTS
from engage.model.draft import Draft
from engage.serving.schemas import CompareRequest, DraftIn, HistoryPostIn, ScoreRequest

#: Form fields that are left out when sent empty (an HTML form sends every field).
_OPTIONAL_FORM_FIELDS = ("posted_at", "followers", "sponsored", "history", "image")


#: At most this many problems are listed in one answer; the rest are counted, so an answer stays a few KB.
MAX_PROBLEMS = 20
#: Longest message kept in an answer (ours are shorter; this bounds what a library might say).
MAX_MESSAGE_CHARS = 300
#: Longest integer literal read from JSON; valid values have at most 11 digits. Longer ones become infinite,
#: which the schema refuses naming the field (Python refuses to convert over 4,300 digits at all).
MAX_INT_DIGITS = 100


class RequestError(Exception):
    """A request that cannot be answered as asked: an HTTP status and the fields at fault.

    Only the first `MAX_PROBLEMS` problems are kept, followed by one that counts the rest.
    """

    def __init__(self, status: int, problems: Sequence[tuple[str | None, str]],
                 headers: dict[str, str] | None = None):
        self.status = status
        problems = list(problems)
        self.problems = [(f, m if len(m) <= MAX_MESSAGE_CHARS else m[: MAX_MESSAGE_CHARS - 3] + "...")
                         for f, m in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            self.problems.append((None, f"and {len(problems) - MAX_PROBLEMS:,} more problems, not listed"))
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


#: What to send instead, by pydantic error type: every 4xx
#: for a date, a count or a flag names the expected form.
_EXPECTED = {
    "datetime": "send ISO 8601, e.g. 2024-05-12T09:00:00Z (a time without an offset is UTC)",
    "date": "send ISO 8601, e.g. 2024-05-12T09:00:00Z (a time without an offset is UTC)",
    "int": "send a whole number without separators, e.g. 5400",
    "bool": "send true or false",
}


def _expected_form(error_type: str, loc: list[Any]) -> str:
    kind = error_type.split("_")[0]
    if kind in _EXPECTED and error_type not in ("int_from_float",):
        return _EXPECTED[kind]
    if error_type == "int_from_float":
        return "send a whole number, e.g. 5400"
    if error_type in ("greater_than_equal", "less_than_equal") and loc and loc[-1] != "posted_at":
        return "counts are whole numbers from 0 to 10,000,000,000"
    return ""


def validation_problems(error: ValidationError, prefix: str = "") -> list[tuple[str | None, str]]:
    """pydantic's errors without the submitted input (pydantic's own messages never quote it).

    Locations only hold schema field names and list positions: unknown keys are removed before validation
    (`without_unknown_fields`), so a client's key names are never repeated.
    """
    problems: list[tuple[str | None, str]] = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        loc = [p for p in item["loc"] if p != "body"]
        message = "is required" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
        expected = _expected_form(item["type"], loc)
        problems.append((field_name(loc, prefix), f"{message}; {expected}" if expected else message))
    return problems


def _huge_int(digits: str) -> int | float:
    if len(digits) <= MAX_INT_DIGITS:
        return int(digits)
    return -math.inf if digits.startswith("-") else math.inf


def parse_json(text: bytes | str, field: str, status: int) -> Any:
    """JSON text -> value; any text that is not JSON is a `status` RequestError naming `field`."""
    try:
        return json.loads(text, parse_int=_huge_int)
    except UnicodeDecodeError:
        raise RequestError(status, [(field, "is not UTF-8 text; send JSON encoded as UTF-8")]) from None
    except json.JSONDecodeError as e:
        raise RequestError(
            status, [(field, f"is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")]) from None
    except RecursionError:
        raise RequestError(status, [(field, "is nested too deeply to be a draft")]) from None
    except ValueError:  # e.g. a number beyond what Python converts
        raise RequestError(
            status, [(field, "is not JSON that can be read (a number or string beyond any limit)")]) from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body -> its JSON object: 400 when it is not
    JSON at all, 422 when it is JSON but not an object."""
    if not body.strip():
        raise RequestError(422,
                           [("body", "is empty; send a JSON object with the draft's fields (see /docs)")])
    value = parse_json(body, "body", 400)
    if not isinstance(value, dict):
        raise RequestError(422, [
            ("body", f"must be a JSON object with the draft's fields, not a JSON {type(value).__name__}")])
    return value


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the request model inside a field's type, whether it is a list
    of them): list[HistoryPostIn] | None -> (HistoryPostIn, True)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) is list:
        return _nested_model(typing.get_args(annotation)[0])[0], True
    for arg in typing.get_args(annotation):  # X | None
        model, many = _nested_model(arg)
        if model is not None:
            return model, many
    return None, False


def without_unknown_fields(schema: type[BaseModel], data: Any,
                           where: str = "") -> tuple[Any, list[tuple[str | None, str]]]:
    """`data` with the keys `schema` does not define removed (also in nested posts and drafts), and one
    problem per object that had any, which counts them without repeating their names (they may be huge, or
    markup).

    Done before pydantic, which would otherwise build one error, with the key in it, per unknown key.
    """
    problems: list[tuple[str | None, str]] = []
    # model -> where its fields were listed: each list is written once
    listed: dict[type[BaseModel], str] = {}

    def strip(model: type[BaseModel], value: Any, at: str) -> Any:
        if not isinstance(value, dict):
            return value
        fields = model.model_fields
        kept: dict[str, Any] = {}
        slot = len(problems)  # an object's own problem comes before those of its posts
        present = [key for key in fields if key in value]  # never loops over the client's keys
        unknown = len(value) - len(present)
        for key in present:
            info, item = fields[key], value[key]
            inner, many = _nested_model(info.annotation)
            name = f"{at}.{key}" if at else key
            if inner is not None and many and isinstance(item, list):
                item = [strip(inner, element, f"{name}[{i}]") for i, element in enumerate(item)]
            elif inner is not None:
                item = strip(inner, item, name)
            kept[key] = item
        if unknown:
            where = at or "body"
            known = (f"its fields are: {', '.join(fields)}" if model not in listed
                     else f"its fields are those of {listed[model]}")
            listed.setdefault(model, where)
            problems.insert(slot,
                            (where, f"has {unknown:,} unknown field{'s' if unknown > 1 else ''} (names not "
                                          f"repeated); {known}"))
        return kept

    return strip(schema, data, where), problems


def validate_body(schema: type[BaseModel], data: dict[str, Any]) -> Any:
    data, problems = without_unknown_fields(schema, data)
    try:
        request = schema.model_validate(data)
    except ValidationError as e:
        raise RequestError(422, problems + validation_problems(e)) from None
    if problems:
        raise RequestError(422, problems)
    return request


def decode_image(text: str, field: str) -> bytes:
    """base64 text (or a data: URL) -> the file's bytes; 400 naming `field` if it is not base64."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise RequestError(
                400, [(field, "is a data: URL that is not base64-encoded; send data:image/jpeg;base64,...")])
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(
            400, [(field, "is not valid base64; send the JPEG, PNG or WebP file's bytes base64-encoded, "
                                         "or upload the file as multipart/form-data")]) from None
    if not raw:
        raise RequestError(400, [(field, "is empty; leave the field out to score a draft without a photo")])
    return raw


def decode_history(history: list[HistoryPostIn] | None, prefix: str = "") -> list[dict[str, Any]] | None:
    """History posts with their photos base64-decoded (errors name `{prefix}history[i].image`)."""
    if history is None:
        return None
    return [
        {"caption": h.caption, "posted_at": h.posted_at, "likes": h.likes, "comments": h.comments,
         **{count: getattr(h, count) for count in INSIGHT_COUNTS},
         "image": decode_image(h.image, f"{prefix}history[{i}].image") if h.image is not None else None}
        for i, h in enumerate(history)
    ]


def build_draft(account: str, fields: DraftIn, *, prefix: str = "", image: bytes | None = None,
                history: list[dict[str, Any]] | None = None, followers: int | None = None) -> Draft:
    """The model's `Draft` for validated request fields; `image` (bytes from an upload) wins over
    `fields.image`, and the draft's own history and followers win over the account-level `history` and
    `followers`."""
    if image is None and fields.image is not None:
        image = decode_image(fields.image, f"{prefix}image")
    if fields.history is not None:
        history = decode_history(fields.history, prefix)
    try:
        return Draft.from_record({"account": account, "caption": fields.caption, "image": image,
                                  "posted_at": fields.posted_at,
            "followers": fields.followers if fields.followers is not None else followers,
                                  "sponsored": fields.sponsored, "history": history})
    except ValidationError as e:
        raise RequestError(422, validation_problems(e, prefix)) from None


def score_request_from_json(body: bytes) -> Draft:
    request = validate_body(ScoreRequest, parse_json_object(body))
    return build_draft(request.account, request)


def compare_request_from_json(body: bytes) -> tuple[CompareRequest, list[Draft]]:
    request = validate_body(CompareRequest, parse_json_object(body))
    history = decode_history(request.history)  # decoded once, shared by the drafts that send none
    drafts = [build_draft(request.account, d, prefix=f"drafts[{i}].", history=history,
                          followers=request.followers)
              for i, d in enumerate(request.drafts)]
    return request, drafts


#: Fields a form may have (the request has 7; an HTML form sends each once).
MAX_FORM_FIELDS = 20


def urlencoded_fields(body: bytes) -> dict[str, list[Any]]:
    """An application/x-www-form-urlencoded body -> field -> values; 400 when it has over MAX_FORM_FIELDS.

    Parsed here rather than by starlette, whose parser spends seconds of CPU on 9 MB of bare "&".
    """
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                                       max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise RequestError(400, [("body", f"has more than {MAX_FORM_FIELDS} form fields")]) from None
    fields: dict[str, list[Any]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def score_request_from_form(fields: dict[str, list[Any]], read_file: Callable[[Any], bytes]) -> Draft:
    """A multipart form (field -> values; files read with
    `read_file`) -> Draft. History is a JSON string field.

    Field names that are not part of the request are counted, never repeated (like unknown JSON keys).
    """
    data: dict[str, Any] = {}
    image: bytes | None = None
    known = ScoreRequest.model_fields
    unknown = 0
    for name, values in fields.items():
        if name not in known:
            unknown += 1
            continue
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
            data[name] = parse_json(value, "history", 422)
            continue
        # An HTML form sends a textarea's line breaks as CRLF; the caption as typed (and as counted) has LF.
        data[name] = value.replace("\r\n", "\n") if name == "caption" else value
    if unknown:
        raise RequestError(422,
                           [("body", f"has {unknown:,} unknown form field{'s' if unknown > 1 else ''} (names "
                                          f"not repeated); its fields are: {', '.join(known)}")])
    request = validate_body(ScoreRequest, data)
    return build_draft(request.account, request, image=image)


_FORM_TYPES = {"multipart/form-data": "multipart", "application/x-www-form-urlencoded": "urlencoded"}


def body_type(request: Request, *, forms: bool) -> str:
    """"json", or "multipart" / "urlencoded" (when `forms`),
    from the headers; 415 naming the header otherwise."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise RequestError(415, [("Content-Encoding", "is not supported; send the body uncompressed "
                                                      "(Content-Encoding: identity or none)")])
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if forms and content_type in _FORM_TYPES:
        return _FORM_TYPES[content_type]
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        where = "application/json or multipart/form-data" if forms else "application/json"
        raise RequestError(415, [("Content-Type", f"must be {where}")])
    return "json"
