"""A local fake of the Hook0 API, held to the contract Hook0 publishes.

Hook0 cannot run here, so the Hook0 sink is tested against this fake instead. It reads the contract
from `tests/contracts/hook0/` (the OpenAPI snapshot and the SDK headers contract, copied from
Hook0's repository: see that directory's README) and answers
what the real API answers, in the order the real API decides it:

`POST /api/v1/event/` (the trailing slash is optional)
    1. a canned answer queued with `fail_next`, whatever the request carries;
    2. 401 `AuthNoAuthorizationHeader` without `Authorization`, 403 `AuthInvalidBiscuit` for a
       token no application accepts (a `Bearer ` prefix is stripped, as the server does);
    3. 429 `RateLimited` with `Retry-After` when `rate_limit` is on and the token's bucket is empty;
    4. 400 `JsonPayload` for a body that is not JSON, not declared as JSON, over 2 MiB, or that the
       spec's `EventPost` schema refuses (missing member, wrong type, bad uuid/date-time format);
    5. 403 `Forbidden` when the token does not cover the body's `application_id`;
    6. 422 `Validation` for the limits the schema does not carry: labels 1..10 entries, metadata at
       most 50 entries, their keys and values 1..50 bytes, `event_type` 1..200 characters,
       `payload_content_type` 1..100 characters, `payload` at most 699050 characters;
    7. 429 `TooManyEventsToday` once `events_per_day` events were ingested for the application;
    8. 400 `EventInvalidPayloadContentType`, then 400 `EventInvalidJsonPayload` /
       `EventInvalidBase64Payload` for a payload its content type cannot read;
    9. 409 `EventAlreadyIngested` for an `event_id` already ingested, then 400
       `EventTypeDoesNotExist` for a type the application does not declare;
    10. 201 with `application_id`, `event_id` (generated as a UUIDv7 when absent), `received_at`.

A body over 2 MiB is answered 400 `JsonPayload` ("Body is too big (maximum is 2097152 bytes)"):
the README puts the limit at 2 MiB, the spec declares no 413 for this operation, and Hook0 maps
every failure of its JSON body extractor, overflow included, to `JsonPayload`. The body is read
and discarded so that the connection stays usable.

`GET /api/v1/event_types/?application_id=...` lists the application's types, sorted by name;
`POST /api/v1/event_types/` creates one (201, and 201 again when it exists). A missing or malformed
`application_id` query parameter is a 400 `JsonPayload`, the only 400 problem of the spec's closed
list that fits. Unknown paths answer 404 `NotFound`, known paths with another method 405.

Every problem is an `application/problem+json` body with the members the spec's `Problem` schema
requires (`type`, `id`, `title`, `detail`, `status`) plus `validation`, which is the refused fields
for `Validation` and `null` otherwise, as the member's own description in the spec says.

Every request is recorded, with its headers checked against `conformance-request.json`; every
ingested event is recorded with its payload parsed. All of it is guarded by one lock, so tests,
benchmarks and the server threads can read and write concurrently.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import os
import re
import socket
import threading
import time
import unicodedata
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

from tests.support.paths import HOOK0_CONTRACT

CONTRACT_DIR = HOOK0_CONTRACT
DEFAULT_SPEC_PATH = CONTRACT_DIR / "openapi.snapshot.json"
DEFAULT_CONFORMANCE_PATH = CONTRACT_DIR / "conformance-request.json"

EVENT_ROUTE = "/api/v1/event"
EVENT_TYPES_ROUTE = "/api/v1/event_types"

# Request bodies Hook0 reads at most (actix-web's JSON default, which Hook0 keeps).
MAX_BODY_BYTES = 2 * 1024 * 1024
# How often the accept loop looks for `stop`, which is how long stopping the fake takes at most.
SHUTDOWN_POLL_SECONDS = 0.02
# Beyond this an oversized body is not drained: the answer closes the connection instead.
MAX_DRAINED_BYTES = 64 * 1024 * 1024

# Limits Hook0's validators apply to an event (422 `Validation`); the schema carries none of them.
LABELS_ENTRIES = (1, 10)
METADATA_ENTRIES = (0, 50)
PROPERTY_BYTES = (1, 50)
EVENT_TYPE_CHARS = (1, 200)
PAYLOAD_CONTENT_TYPE_CHARS = (1, 100)
PAYLOAD_MAX_CHARS = 699_050
EVENT_TYPE_PART_CHARS = (1, 50)

PAYLOAD_CONTENT_TYPES = ("text/plain", "application/json", "application/octet-stream+base64")
EVENT_TYPE_PART = re.compile(r"[A-Za-z0-9_]+")
EVENT_TYPE_NAME = re.compile(r"([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_URL = "https://documentation.hook0.com/reference/error-codes#{}"

# Status, title and default detail of the problems the fake answers on its own, as Hook0 words them.
PROBLEMS: dict[str, tuple[int, str, str]] = {
    "AuthNoAuthorizationHeader": (
        401,
        "No `Authorization` header was found in the HTTP request",
        "`Authorization` header must be provided and must contain a bearer token.",
    ),
    "AuthInvalidBiscuit": (
        403,
        "Invalid Biscuit",
        "The provided authentication token (Biscuit) is not valid, was not created using the "
        "current private key or is expired.",
    ),
    "Forbidden": (
        403,
        "Insufficient rights",
        "You don't have the right to access or edit this resource.",
    ),
    "JsonPayload": (400, "Provided body could not be decoded as JSON", ""),
    "Validation": (422, "Provided input is malformed", "Provided input did not pass validation."),
    "EventTypeDoesNotExist": (
        400,
        "Invalid event type",
        "Event type does not exist or was deactivated. You should (re)create it.",
    ),
    "EventAlreadyIngested": (
        409,
        "Event already Ingested",
        "This event was previously ingested and recorded inside Hook0 service.",
    ),
    "EventInvalidPayloadContentType": (
        400,
        "Invalid event payload content type",
        "The specified event payload content type is not handled. Valid content types are: "
        + ", ".join(PAYLOAD_CONTENT_TYPES),
    ),
    "EventInvalidBase64Payload": (400, "Invalid event base64 payload", ""),
    "EventInvalidJsonPayload": (400, "Invalid event JSON payload", ""),
    "TooManyEventsToday": (
        429,
        "Exceeded number of events that can be ingested in this organization today",
        "",
    ),
    "RateLimited": (
        429,
        "Too many requests",
        "Requests are coming in faster than this Hook0 instance accepts them, so this one was not "
        "processed. This is a temporary, client-side pacing condition, not a rights issue: the "
        "request is safe to send again once the delay given by the `Retry-After` response header "
        "has elapsed.",
    ),
    "ServiceUnavailable": (
        503,
        "Service temporarily unavailable",
        "Hook0 is under heavy load and could not authorize your request in time. This is a "
        "temporary, server-side condition, not a rights issue: the request is safe to retry.",
    ),
    "NotFound": (
        404,
        "Item not found",
        "Could not find the item. Check the identifier or that you have the right to access it.",
    ),
    "InternalServerError": (
        500,
        "Something wrong happened",
        "Hook0 server had issue handling your request. Our team was notified.",
    ),
}

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339(text: str) -> datetime | None:
    """The instant an RFC 3339 date-time with an offset names, or None for anything else."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}")
    except ValueError:
        return None


FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or _UUID.fullmatch(value) is not None


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or _rfc3339(value) is not None


@FORMAT_CHECKER.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMAT_CHECKER.checks("int64")
def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes "or null"."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _read_contract_file(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(
            f"The Hook0 {what} is not at {path}. The fake reads Hook0's contract from "
            f"tests/contracts/hook0/ (see that directory's README); pass its path explicitly "
            f"if it lives elsewhere."
        )
    return json.loads(path.read_text(encoding="utf-8"))


class OpenApiSchemas:
    """The component schemas of Hook0's OpenAPI spec, ready to validate instances against."""

    def __init__(self, spec_path: Path) -> None:
        spec = _read_contract_file(spec_path, "OpenAPI spec")
        self._schemas = spec["components"]["schemas"]
        self._root = {"components": {"schemas": _json_schema(self._schemas)}}
        self._validators: dict[str, Draft4Validator] = {}
        self._lock = threading.Lock()
        self.problem_ids = frozenset(self._schemas["Problem"]["properties"]["id"]["enum"])

    def _validator(self, name: str) -> Draft4Validator:
        with self._lock:
            if name not in self._validators:
                if name not in self._schemas:
                    raise KeyError(f"the Hook0 spec declares no `{name}` schema")
                schema = {"$ref": f"#/components/schemas/{name}", **self._root}
                self._validators[name] = Draft4Validator(schema, format_checker=FORMAT_CHECKER)
            return self._validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        """What the schema `name` refuses in `instance`, one message per error, empty if valid."""
        found = sorted(self._validator(name).iter_errors(instance), key=lambda e: list(e.path))
        messages = []
        for error in found:
            where = ".".join(str(part) for part in error.absolute_path)
            messages.append(f"at `{where}`: {error.message}" if where else error.message)
        return messages


@lru_cache(maxsize=8)
def _schemas_at(spec_path: Path) -> OpenApiSchemas:
    return OpenApiSchemas(spec_path)


@dataclass(frozen=True)
class ConformanceViolation:
    """One header of one request that does not hold to `conformance-request.json`."""

    method: str
    path: str
    header: str
    expected: str
    received: str | None
    reason: str


# Holes a suite speaks for: the fake fills `language` itself, and cannot know which credential the
# client was built with, so `token` is matched like the others but is not a composed value.
_SUITE_HOLES = frozenset({"token", "language"})
# Holes the contract says are integers without a unit (the four parts of Hook0-Client-Options).
_INTEGER_HOLES = frozenset({"attempts", "backoff_ms", "ceiling_ms", "budget_ms"})
_HOLE = re.compile(r"\$\{([A-Za-z_]+)\}")
_EVERY_REQUEST = "every request"
_WITH_BODY = "a request carrying a body"


@dataclass(frozen=True)
class _HeaderRule:
    name: str
    template: str
    when: str
    pattern: re.Pattern[str]
    holes: tuple[str, ...]
    composed: bool


class ConformanceRules:
    """The headers every official SDK must send, read from `conformance-request.json`."""

    def __init__(self, path: Path, *, language: str) -> None:
        document = _read_contract_file(path, "SDK conformance contract")
        self.max_composed_bytes: int = document["max_composed_bytes"]
        self.rules = [self._rule(header, language) for header in document["headers"]]

    @staticmethod
    def _rule(header: Mapping[str, str], language: str) -> _HeaderRule:
        if header["when"] not in (_EVERY_REQUEST, _WITH_BODY):
            raise ValueError(f"conformance contract: unknown occasion {header['when']!r}")
        pieces = _HOLE.split(header["value"])
        regex = []
        holes = []
        for index, piece in enumerate(pieces):
            if index % 2 == 0:
                regex.append(re.escape(piece))
            elif piece == "language":
                regex.append(re.escape(language))
            else:
                regex.append("(.+)")
                holes.append(piece)
        return _HeaderRule(
            name=header["name"],
            template=header["value"],
            when=header["when"],
            pattern=re.compile("".join(regex)),
            holes=tuple(holes),
            composed=any(hole not in _SUITE_HOLES for hole in holes),
        )

    def check(
        self, method: str, path: str, headers: Message, *, has_body: bool
    ) -> list[ConformanceViolation]:
        """Every way the headers of one request depart from the contract."""
        found = []
        for rule in self.rules:
            if rule.when == _WITH_BODY and not has_body:
                continue
            values = headers.get_all(rule.name) or []
            received = values[0].strip() if len(values) == 1 else None
            reason = self._mismatch(rule, values, received)
            if reason is not None:
                found.append(
                    ConformanceViolation(method, path, rule.name, rule.template, received, reason)
                )
        return found

    def _mismatch(self, rule: _HeaderRule, values: list[str], received: str | None) -> str | None:
        if not values:
            return "missing"
        if received is None:
            return f"sent {len(values)} times"
        match = rule.pattern.fullmatch(received)
        if match is None:
            return "does not match the template"
        if rule.composed and len(received.encode("utf-8")) > self.max_composed_bytes:
            return f"longer than the {self.max_composed_bytes} bytes a composed value may take"
        for hole, text in zip(rule.holes, match.groups(), strict=True):
            if hole in _INTEGER_HOLES and not (text.isascii() and text.isdigit()):
                return f"`{hole}` is {text!r}, not an integer"
        return None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached the fake, and the status it was answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes | None
    status: int
    problem: str | None


@dataclass(frozen=True)
class RecordedEvent:
    """One ingested event. `payload` is parsed: JSON value, text, or bytes for base64."""

    application_id: str
    event_id: str
    event_type: str
    labels: dict[str, str]
    metadata: dict[str, str] | None
    payload_content_type: str
    payload: Any
    raw_payload: str
    occurred_at: str
    received_at: str
    body: dict[str, Any]


@dataclass(frozen=True)
class _Canned:
    status: int
    problem: str
    detail: str | None
    retry_after: int | None


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class _Incoming:
    method: str
    path: str
    query: str
    headers: Message
    body: bytes
    oversized: bool


@dataclass
class _Answer:
    status: int
    document: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


class _Refused(Exception):
    """A request the fake answers with a problem; raised to leave the pipeline early."""

    def __init__(
        self,
        problem: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        validation: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.detail = detail
        self.status = status
        self.validation = validation
        self.headers = dict(headers or {})


def problem_document(
    problem: str,
    *,
    status: int | None = None,
    detail: str | None = None,
    validation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An RFC 7807 body as Hook0 writes it."""
    known_status, title, default_detail = PROBLEMS.get(problem, (500, problem, ""))
    return {
        "type": PROBLEM_TYPE_URL.format(problem.lower()),
        "title": title,
        "status": status if status is not None else known_status,
        "detail": detail if detail is not None else default_detail,
        "id": problem,
        "validation": validation,
    }


def _utc_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _uuid7() -> str:
    drawn = bytearray(os.urandom(16))
    drawn[0:6] = int(time.time() * 1000).to_bytes(6, "big")
    drawn[6] = (drawn[6] & 0x0F) | 0x70
    drawn[8] = (drawn[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(drawn)))


def _canonical_uuid(text: str) -> str:
    return str(uuid.UUID(text))


def _is_json_media_type(value: str | None) -> bool:
    """What actix-web's JSON extractor accepts: a `json` subtype or a `+json` suffix."""
    if not value:
        return False
    essence = value.split(";", 1)[0].strip().lower()
    _, _, subtype = essence.partition("/")
    return subtype == "json" or subtype.endswith("+json")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class _Violations:
    """The refused fields of one body, in the shape Hook0's `validation` member carries."""

    def __init__(self) -> None:
        self.fields: dict[str, list[dict[str, Any]]] = {}

    def add(self, name: str, code: str, message: str, **params: Any) -> None:
        entry = {"code": code, "message": message, "params": params}
        self.fields.setdefault(name, []).append(entry)

    def text(self, name: str, value: str, chars: tuple[int, int]) -> None:
        if any(unicodedata.category(character) == "Cc" for character in value):
            self.add(name, "non_control_character", "must not contain control characters")
        low, high = chars
        if not low <= len(value) <= high:
            self.add(
                name,
                "length",
                f"length must be between {low} and {high} characters",
                min=low,
                max=high,
                value=value,
            )

    def mapping(
        self, name: str, value: Mapping[str, str], entries: tuple[int, int], what: str
    ) -> None:
        low, high = entries
        if not low <= len(value) <= high:
            self.add(
                name,
                f"{name}-size",
                f"{what} object must have between {low} and {high} properties",
                value=dict(value),
            )
            return
        low, high = PROPERTY_BYTES
        out_of_range = [
            key
            for key, item in value.items()
            if not low <= len(key.encode("utf-8")) <= high
            or not low <= len(item.encode("utf-8")) <= high
        ]
        if out_of_range:
            self.add(
                name,
                f"{name}-property-length",
                f"{what} properties and values must have a length between {low} and {high} "
                f"(the following properties are out of range: {', '.join(out_of_range)})",
                value=dict(value),
            )

    def raise_if_any(self) -> None:
        if self.fields:
            detail = "\n".join(
                f"{name}: {entry['message']}"
                for name, entries in self.fields.items()
                for entry in entries
            )
            raise _Refused("Validation", detail, validation=self.fields)


def _check_event(body: Mapping[str, Any]) -> None:
    found = _Violations()
    found.text("event_type", body["event_type"], EVENT_TYPE_CHARS)
    if len(body["payload"]) > PAYLOAD_MAX_CHARS:
        found.add(
            "payload",
            "length",
            f"length must be at most {PAYLOAD_MAX_CHARS} characters",
            max=PAYLOAD_MAX_CHARS,
        )
    found.text("payload_content_type", body["payload_content_type"], PAYLOAD_CONTENT_TYPE_CHARS)
    found.mapping("labels", body["labels"], LABELS_ENTRIES, "Labels")
    if "metadata" in body:
        found.mapping("metadata", body["metadata"], METADATA_ENTRIES, "Metadata")
    found.raise_if_any()


def _check_event_type_parts(body: Mapping[str, str]) -> None:
    found = _Violations()
    for name in ("service", "resource_type", "verb"):
        found.text(name, body[name], EVENT_TYPE_PART_CHARS)
        if body[name] and EVENT_TYPE_PART.fullmatch(body[name]) is None:
            found.add(name, "regex", "must only contain letters, digits and underscores")
    found.raise_if_any()


def _decoded_payload(content_type: str, payload: str) -> Any:
    """The payload read as its content type says, or the problem Hook0 answers."""
    if content_type not in PAYLOAD_CONTENT_TYPES:
        raise _Refused("EventInvalidPayloadContentType")
    if content_type == "application/json":
        try:
            return json.loads(payload, parse_constant=_refuse_constant)
        except ValueError as error:
            raise _Refused(
                "EventInvalidJsonPayload",
                f"Event payload is not encoded in valid JSON format: {error}.",
            ) from error
    if content_type == "application/octet-stream+base64":
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error as error:
            raise _Refused(
                "EventInvalidBase64Payload",
                f"Event payload is not encoded in valid base64 format: {error}",
            ) from error
    return payload


class Hook0Fake:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering like the Hook0 API.

    `applications` maps each application id (a UUID) to the bearer tokens that cover it; a token
    may cover several applications. `event_types` declares types up front (the SDK's
    `upsert_event_types` can also create them). Use it as a context manager, or `start`/`stop`.
    """

    def __init__(
        self,
        applications: Mapping[str, Iterable[str]],
        *,
        event_types: Mapping[str, Iterable[str]] | None = None,
        spec_path: Path | str | None = None,
        conformance_path: Path | str | None = None,
        language: str = "python",
        latency: float = 0.0,
        port: int = 0,
    ) -> None:
        self.schemas = _schemas_at(Path(spec_path or DEFAULT_SPEC_PATH).resolve())
        self.conformance = ConformanceRules(
            Path(conformance_path or DEFAULT_CONFORMANCE_PATH), language=language
        )
        self.latency = latency
        self._port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._applications_of_token: dict[str, set[str]] = {}
        self._event_types: dict[str, dict[str, dict[str, str]]] = {}
        for application_id, tokens in applications.items():
            canonical = _canonical_uuid(application_id)
            self._event_types[canonical] = {}
            for token in tokens:
                self._applications_of_token.setdefault(token, set()).add(canonical)
        for application_id, names in (event_types or {}).items():
            for name in names:
                self.declare_event_type(application_id, name)
        self._events: list[RecordedEvent] = []
        self._event_ids: set[str] = set()
        self._events_per_application: Counter[str] = Counter()
        self._requests: list[RecordedRequest] = []
        self._violations: list[ConformanceViolation] = []
        self._statuses: Counter[int] = Counter()
        self._canned: list[_Canned] = []
        self._rate: tuple[int, float] | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._events_per_day: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Hook0Fake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Hook0Fake:
        if self._server is not None:
            raise RuntimeError("the Hook0 fake is already running")
        self._server = _Server(("127.0.0.1", self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="hook0-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the Hook0 fake is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def declare_event_type(self, application_id: str, name: str) -> None:
        """Declares `service.resource_type.verb` on an application, as a POST would."""
        parts = EVENT_TYPE_NAME.fullmatch(name)
        if parts is None:
            raise ValueError(f"{name!r} is not `service.resource_type.verb`")
        body = dict(zip(("service", "resource_type", "verb"), parts.groups(), strict=True))
        _check_event_type_parts(body)
        with self._lock:
            self._upsert_event_type(_canonical_uuid(application_id), body)

    def event_types(self, application_id: str) -> list[str]:
        with self._lock:
            return sorted(self._event_types.get(_canonical_uuid(application_id), {}))

    def fail_next(
        self,
        count: int,
        *,
        status: int = 503,
        problem: str = "ServiceUnavailable",
        retry_after: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Answers the next `count` event posts with this problem, whatever they carry.

        The real API sends `Retry-After: 5` with its 503; here the header is only sent when
        `retry_after` is given, so that a test decides how long a client may be held.
        """
        if problem not in self.schemas.problem_ids:
            raise ValueError(f"{problem!r} is not a problem id the Hook0 spec declares")
        if not 400 <= status <= 599:
            raise ValueError(f"{status} is not an error status")
        with self._lock:
            self._canned.extend([_Canned(status, problem, detail, retry_after)] * count)

    def rate_limit(self, burst: int | None, per_second: float = 10.0) -> None:
        """Per-token token bucket: `burst` requests, then `per_second`; None turns it off.

        Hook0's own default is a burst of 20 then one request per 100 ms. Its `Retry-After` is
        the wait in whole seconds, rounded down as actix-governor writes it, so it can be `0`.
        """
        with self._lock:
            self._rate = None if burst is None else (burst, per_second)
            self._buckets.clear()

    def set_events_per_day(self, limit: int | None) -> None:
        """Refuses events with 429 `TooManyEventsToday` once an application ingested `limit`."""
        with self._lock:
            self._events_per_day = limit

    @property
    def events(self) -> list[RecordedEvent]:
        with self._lock:
            return list(self._events)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[ConformanceViolation]:
        with self._lock:
            return list(self._violations)

    @property
    def status_counts(self) -> dict[int, int]:
        with self._lock:
            return dict(self._statuses)

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[RecordedEvent]:
        """The ingested events once there are at least `count`; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._events) >= count, timeout):
                raise TimeoutError(
                    f"{len(self._events)} of {count} events reached the Hook0 fake in {timeout}s"
                )
            return list(self._events)

    def _handle(self, incoming: _Incoming) -> _Answer:
        has_body = bool(incoming.body) or incoming.oversized
        violations = self.conformance.check(
            incoming.method, incoming.path, incoming.headers, has_body=has_body
        )
        answer = self._answer(incoming)
        record = RecordedRequest(
            method=incoming.method,
            path=incoming.path,
            query=incoming.query,
            headers={name.lower(): value for name, value in incoming.headers.items()},
            body=None if incoming.oversized else incoming.body,
            status=answer.status,
            problem=answer.problem,
        )
        with self._lock:
            self._requests.append(record)
            self._violations.extend(violations)
            self._statuses[answer.status] += 1
        if self.latency > 0:
            time.sleep(self.latency)
        return answer

    def _answer(self, incoming: _Incoming) -> _Answer:
        route = incoming.path.rstrip("/")
        routes = {
            ("POST", EVENT_ROUTE): self._ingest,
            ("GET", EVENT_TYPES_ROUTE): self._list_event_types,
            ("POST", EVENT_TYPES_ROUTE): self._create_event_type,
        }
        allowed = [method for method, path in routes if path == route]
        handler = routes.get((incoming.method, route))
        try:
            if not allowed:
                raise _Refused("NotFound")
            if handler is None:
                return _Answer(405, headers={"Allow": ", ".join(allowed)})
            if route == EVENT_ROUTE:
                self._replay_canned()
            token = self._authenticate(incoming.headers.get("Authorization"))
            self._pace(token)
            return handler(incoming, token)
        except _Refused as refused:
            document = problem_document(
                refused.problem,
                status=refused.status,
                detail=refused.detail,
                validation=refused.validation,
            )
            return _Answer(document["status"], document, refused.headers, refused.problem)

    def _replay_canned(self) -> None:
        with self._lock:
            if not self._canned:
                return
            canned = self._canned.pop(0)
        headers = {} if canned.retry_after is None else {"Retry-After": str(canned.retry_after)}
        raise _Refused(canned.problem, canned.detail, status=canned.status, headers=headers)

    def _authenticate(self, authorization: str | None) -> str:
        if authorization is None:
            raise _Refused("AuthNoAuthorizationHeader")
        token = authorization.strip().removeprefix("Bearer ")
        with self._lock:
            if token not in self._applications_of_token:
                raise _Refused("AuthInvalidBiscuit")
        return token

    def _authorize(self, token: str, application_id: str) -> None:
        with self._lock:
            if application_id not in self._applications_of_token[token]:
                raise _Refused("Forbidden")

    def _pace(self, token: str) -> None:
        with self._lock:
            if self._rate is None:
                return
            burst, per_second = self._rate
            now = time.monotonic()
            bucket = self._buckets.setdefault(token, _Bucket(float(burst), now))
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * per_second)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / per_second
        raise _Refused("RateLimited", headers={"Retry-After": str(math.floor(wait))})

    def _json_body(self, incoming: _Incoming, schema: str) -> dict[str, Any]:
        if not _is_json_media_type(incoming.headers.get("Content-Type")):
            raise _Refused("JsonPayload", "Content-Type header should be set to 'application/json'")
        if incoming.oversized:
            raise _Refused("JsonPayload", f"Body is too big (maximum is {MAX_BODY_BYTES} bytes)")
        try:
            document = json.loads(incoming.body.decode("utf-8"), parse_constant=_refuse_constant)
        except ValueError as error:
            raise _Refused("JsonPayload", f"JSON deserialization error: {error}") from error
        errors = self.schemas.errors(schema, document)
        if errors:
            raise _Refused("JsonPayload", f"JSON deserialization error: {errors[0]}")
        return document

    def _ingest(self, incoming: _Incoming, token: str) -> _Answer:
        body = self._json_body(incoming, "EventPost")
        application_id = _canonical_uuid(body["application_id"])
        self._authorize(token, application_id)
        _check_event(body)
        with self._changed:
            limit = self._events_per_day
            if limit is not None and self._events_per_application[application_id] >= limit:
                raise _Refused(
                    "TooManyEventsToday",
                    f"This organization cannot ingest more than {limit} events per day. "
                    f"You might want to upgrade to a better plan.",
                )
            payload = _decoded_payload(body["payload_content_type"], body["payload"])
            event_id = _canonical_uuid(body["event_id"]) if "event_id" in body else _uuid7()
            if event_id in self._event_ids:
                raise _Refused("EventAlreadyIngested")
            if body["event_type"] not in self._event_types.get(application_id, {}):
                raise _Refused("EventTypeDoesNotExist")
            received_at = _utc_now()
            self._events.append(
                RecordedEvent(
                    application_id=application_id,
                    event_id=event_id,
                    event_type=body["event_type"],
                    labels=dict(body["labels"]),
                    metadata=dict(body["metadata"]) if "metadata" in body else None,
                    payload_content_type=body["payload_content_type"],
                    payload=payload,
                    raw_payload=body["payload"],
                    occurred_at=body["occurred_at"],
                    received_at=received_at,
                    body=body,
                )
            )
            self._event_ids.add(event_id)
            self._events_per_application[application_id] += 1
            self._changed.notify_all()
        ingested = {
            "application_id": application_id,
            "event_id": event_id,
            "received_at": received_at,
        }
        return _Answer(201, ingested)

    def _list_event_types(self, incoming: _Incoming, token: str) -> _Answer:
        values = urllib.parse.parse_qs(incoming.query).get("application_id", [])
        if len(values) != 1 or _UUID.fullmatch(values[0]) is None:
            raise _Refused(
                "JsonPayload",
                "Query deserialize error: `application_id` must be given once, as a UUID",
            )
        application_id = _canonical_uuid(values[0])
        self._authorize(token, application_id)
        with self._lock:
            declared = self._event_types.get(application_id, {})
            listed = [declared[name] for name in sorted(declared)]
        return _Answer(200, listed)

    def _create_event_type(self, incoming: _Incoming, token: str) -> _Answer:
        body = self._json_body(incoming, "EventTypePost")
        application_id = _canonical_uuid(body["application_id"])
        self._authorize(token, application_id)
        _check_event_type_parts(body)
        with self._lock:
            created = self._upsert_event_type(application_id, body)
        return _Answer(201, created)

    def _upsert_event_type(self, application_id: str, body: Mapping[str, str]) -> dict[str, str]:
        name = f"{body['service']}.{body['resource_type']}.{body['verb']}"
        declared = self._event_types.setdefault(application_id, {})
        return declared.setdefault(
            name,
            {
                "service_name": body["service"],
                "resource_type_name": body["resource_type"],
                "verb_name": body["verb"],
                "event_type_name": name,
            },
        )


class _Server(ThreadingHTTPServer):
    """The listening socket, and every connection it has open, so `stop` can close them all."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, fake: Hook0Fake) -> None:
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is not worth a traceback on stderr."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "Hook0Fake"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the fake records requests rather than logging them."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body, oversized = self._read_body()
        except ValueError:
            self.send_error(400, "Malformed request framing")
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        incoming = _Incoming(self.command, path, query, self.headers, body, oversized)
        self._write(self.server.fake._handle(incoming))

    def _read_body(self) -> tuple[bytes, bool]:
        """The request body, or nothing and True when it is over `MAX_BODY_BYTES`."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length <= MAX_BODY_BYTES:
            return self.rfile.read(length), False
        if length > MAX_DRAINED_BYTES:
            self.close_connection = True
            return b"", True
        remaining = length
        while remaining > 0:
            drained = self.rfile.read(min(remaining, 65536))
            if not drained:
                break
            remaining -= len(drained)
        return b"", True

    def _read_chunked(self) -> tuple[bytes, bool]:
        body = bytearray()
        oversized = False
        read = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass
                return (b"", True) if oversized else (bytes(body), False)
            read += size
            if read > MAX_DRAINED_BYTES:
                raise ValueError("chunked body beyond what the fake drains")
            chunk = self.rfile.read(size)
            self.rfile.readline(1024)
            oversized = oversized or read > MAX_BODY_BYTES
            if not oversized:
                body.extend(chunk)

    def _write(self, answer: _Answer) -> None:
        payload = b"" if answer.document is None else json.dumps(answer.document).encode("utf-8")
        self.send_response(answer.status)
        if answer.document is not None:
            media_type = PROBLEM_MEDIA_TYPE if answer.problem else "application/json"
            self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
