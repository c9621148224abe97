"""The Hook0 fake, held to Hook0's contract: the official SDK against it, and raw requests."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hook0 import (
    Event,
    Hook0AsyncClient,
    Hook0Client,
    Hook0ClientError,
    Hook0ClientOptions,
    RetryPolicy,
    generate_event_id,
)

from tests.fakes.hook0_api import MAX_BODY_BYTES, Hook0Fake

APP = "0190f5d4-3c1e-7a2b-8c3d-4e5f60718293"
OTHER_APP = "0190f5d4-3c1e-7a2b-8c3d-4e5f60718294"
TOKEN = "token-of-the-sink"
OTHER_TOKEN = "token-of-another-service"
EVENT_TYPE = "wal2http.row.inserted"

# What the official SDK sends on every request (the SDK-driven tests check that it really does).
CONFORMANT_HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/json",
    "User-Agent": "hook0-client-python/2.0.3 (CPython 3.11.7; Linux x86_64)",
    "Hook0-Client-Options": "attempts=4,backoff=100,ceiling=2000,budget=5000",
}

MISSING = object()


@pytest.fixture
def fake() -> Iterator[Hook0Fake]:
    applications = {APP: [TOKEN], OTHER_APP: [OTHER_TOKEN]}
    event_types = {APP: [EVENT_TYPE], OTHER_APP: [EVENT_TYPE]}
    with Hook0Fake(applications, event_types=event_types) as running:
        yield running


@pytest.fixture
def api(fake: Hook0Fake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.api_url, headers=CONFORMANT_HEADERS, timeout=10) as client:
        yield client


def sdk_client(fake: Hook0Fake, attempts: int = 3) -> Hook0Client:
    policy = RetryPolicy(attempts, initial_backoff=0.001, max_backoff=0.002, max_total_delay=0.05)
    options = Hook0ClientOptions(retry_policy=policy, request_timeout=5.0)
    return Hook0Client(fake.api_url, APP, TOKEN, options)


def row_event(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "event_type": EVENT_TYPE,
        "payload": json.dumps({"id": 7, "name": "Ada", "tags": ["a", "b"]}),
        "payload_content_type": "application/json",
        "labels": {"table": "public.users", "op": "insert"},
    }
    fields.update(changes)
    return Event(**fields)


def event_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "application_id": APP,
        "event_id": str(uuid.uuid4()),
        "event_type": EVENT_TYPE,
        "payload": json.dumps({"id": 7}),
        "payload_content_type": "application/json",
        "labels": {"table": "public.users"},
        "occurred_at": "2026-08-01T12:00:00.123456+00:00",
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not MISSING}


def event_posts(fake: Hook0Fake) -> list[int]:
    return [
        r.status
        for r in fake.requests
        if r.method == "POST" and r.path.rstrip("/") == "/api/v1/event"
    ]


def assert_problem(fake: Hook0Fake, response: httpx.Response, status: int, problem: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert (document["id"], document["status"]) == (problem, status)
    # The API writes `validation: null` on every problem but Validation, as that member's
    # description in the spec says, while the schema types it as an object: null is read as
    # absent here, as the SDK's generated reader does.
    assert (
        fake.schemas.errors("Problem", {k: v for k, v in document.items() if v is not None}) == []
    )
    return document


# The official SDK against the fake.


def test_sdk_upsert_creates_only_missing_event_types(fake: Hook0Fake) -> None:
    client = sdk_client(fake)
    wanted = [EVENT_TYPE, "wal2http.row.updated", "wal2http.row.deleted"]

    assert client.upsert_event_types(wanted) == ["wal2http.row.updated", "wal2http.row.deleted"]
    assert client.upsert_event_types(wanted) == []

    assert fake.event_types(APP) == sorted(wanted)
    creations = [r for r in fake.requests if r.method == "POST" and r.status == 201]
    assert len(creations) == 2


def test_sdk_send_event_is_recorded_as_sent(fake: Hook0Fake) -> None:
    event_id = generate_event_id()
    labels = {"table": "public.users", "op": "insert"}

    assert sdk_client(fake).send_event(row_event(event_id=event_id, labels=labels)) == event_id

    [recorded] = fake.events
    assert (recorded.application_id, recorded.event_id) == (APP, event_id)
    assert recorded.event_type == EVENT_TYPE
    assert recorded.labels == labels
    assert recorded.payload == {"id": 7, "name": "Ada", "tags": ["a", "b"]}
    assert recorded.body["payload"] == json.dumps({"id": 7, "name": "Ada", "tags": ["a", "b"]})
    assert event_posts(fake) == [201]


def test_sdk_resend_of_an_ingested_event_id_is_a_conflict(fake: Hook0Fake) -> None:
    client = sdk_client(fake)
    event_id = client.send_event(row_event())

    with pytest.raises(Hook0ClientError, match="EventAlreadyIngested"):
        client.send_event(row_event(event_id=event_id))

    assert event_posts(fake) == [201, 409]
    assert fake.requests[-1].problem == "EventAlreadyIngested"
    assert [event.event_id for event in fake.events] == [event_id]


def test_sdk_undeclared_event_type_is_refused(fake: Hook0Fake) -> None:
    with pytest.raises(Hook0ClientError, match="EventTypeDoesNotExist"):
        sdk_client(fake).send_event(row_event(event_type="wal2http.row.truncated"))

    assert event_posts(fake) == [400]
    assert fake.events == []


def test_sdk_event_without_labels_is_a_validation_problem(fake: Hook0Fake) -> None:
    with pytest.raises(Hook0ClientError, match="Validation"):
        sdk_client(fake).send_event(row_event(labels={}))

    assert event_posts(fake) == [422]
    assert fake.requests[-1].problem == "Validation"


def test_sdk_retries_a_503_and_succeeds(fake: Hook0Fake) -> None:
    fake.fail_next(1, status=503, problem="ServiceUnavailable", retry_after=0)

    event_id = sdk_client(fake).send_event(row_event())

    assert event_posts(fake) == [503, 201]
    assert [event.event_id for event in fake.events] == [event_id]


def test_sdk_gives_up_at_once_when_the_daily_quota_is_spent(fake: Hook0Fake) -> None:
    fake.set_events_per_day(1)
    client = sdk_client(fake, attempts=4)
    client.send_event(row_event())

    with pytest.raises(Hook0ClientError, match="TooManyEventsToday"):
        client.send_event(row_event())

    assert event_posts(fake) == [201, 429]
    assert len(fake.events) == 1


def test_both_sdk_clients_send_conformant_headers(fake: Hook0Fake) -> None:
    sdk_client(fake).upsert_event_types([EVENT_TYPE, "wal2http.row.updated"])
    sdk_client(fake).send_event(row_event())
    async_client = Hook0AsyncClient(fake.api_url, APP, TOKEN)
    asyncio.run(async_client.send_event(row_event(event_type="wal2http.row.updated")))

    assert len(fake.events) == 2
    assert len(fake.requests) == 4
    assert fake.violations == []


# Raw requests: what the spec accepts and what it refuses.


def test_a_valid_event_is_answered_as_the_spec_declares(fake: Hook0Fake, api: httpx.Client) -> None:
    body = event_body(event_id="0190F5D4-3C1E-7A2B-8C3D-4E5F607182AA")

    response = api.post("/event", json=body)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert fake.schemas.errors("IngestedEvent", answer) == []
    assert (answer["application_id"], answer["event_id"]) == (APP, body["event_id"].lower())
    assert fake.events[0].event_id == body["event_id"].lower()


@pytest.mark.parametrize(
    ("changes", "status", "problem"),
    [
        ({"application_id": MISSING}, 400, "JsonPayload"),
        ({"payload": {"id": 7}}, 400, "JsonPayload"),
        ({"application_id": "not-a-uuid"}, 400, "JsonPayload"),
        ({"event_id": "0190f5d43c1e7a2b8c3d4e5f60718293"}, 400, "JsonPayload"),
        ({"occurred_at": "2026-08-01T12:00:00"}, 400, "JsonPayload"),
        ({"labels": {"table": 1}}, 400, "JsonPayload"),
        ({"metadata": None}, 400, "JsonPayload"),
        ({"labels": {f"k{i}": "v" for i in range(11)}}, 422, "Validation"),
        ({"labels": {}}, 422, "Validation"),
        ({"labels": {"table": "é" * 25 + "a"}}, 422, "Validation"),
        ({"labels": {"é" * 25 + "a": "v"}}, 422, "Validation"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, 422, "Validation"),
        ({"event_type": ""}, 422, "Validation"),
        ({"payload": '"' + "x" * 699_049 + '"'}, 422, "Validation"),
        ({"payload_content_type": "application/xml"}, 400, "EventInvalidPayloadContentType"),
        ({"payload": "{not json"}, 400, "EventInvalidJsonPayload"),
        (
            {"payload": "%%%", "payload_content_type": "application/octet-stream+base64"},
            400,
            "EventInvalidBase64Payload",
        ),
        ({"event_type": "wal2http.row.truncated"}, 400, "EventTypeDoesNotExist"),
        ({"application_id": OTHER_APP}, 403, "Forbidden"),
    ],
    ids=[
        "missing-application-id",
        "payload-not-a-string",
        "bad-application-uuid",
        "unhyphenated-event-uuid",
        "occurred-at-without-offset",
        "label-value-not-a-string",
        "metadata-null",
        "eleven-labels",
        "no-labels",
        "label-value-51-bytes",
        "label-key-51-bytes",
        "metadata-51-entries",
        "empty-event-type",
        "payload-over-699050-chars",
        "unknown-payload-content-type",
        "payload-not-json-text",
        "payload-not-base64",
        "undeclared-event-type",
        "application-not-covered-by-token",
    ],
)
def test_bodies_the_contract_refuses(
    fake: Hook0Fake, api: httpx.Client, changes: dict, status: int, problem: str
) -> None:
    response = api.post("/event/", json=event_body(**changes))

    assert_problem(fake, response, status, problem)
    assert fake.events == []


def test_validation_problem_names_the_refused_field(fake: Hook0Fake, api: httpx.Client) -> None:
    response = api.post("/event/", json=event_body(labels={"table": "é" * 25 + "a"}))

    document = assert_problem(fake, response, 422, "Validation")
    [refusal] = document["validation"]["labels"]
    assert refusal["code"] == "labels-property-length"
    assert document["detail"].startswith("labels: ")


@pytest.mark.parametrize(
    "changes",
    [
        {"labels": {f"k{i}": "v" for i in range(10)}},
        {"labels": {"é" * 25: "ü" * 25}},
        {"metadata": {f"k{i}": "v" for i in range(50)}},
        {"metadata": {}},
        {"event_id": MISSING},
        {"unknown_member": [1, 2]},
        {"payload": "aGVsbG8=", "payload_content_type": "application/octet-stream+base64"},
        {"payload": "plain words", "payload_content_type": "text/plain"},
        {"occurred_at": "2026-08-01T12:00:00Z"},
    ],
    ids=[
        "ten-labels",
        "50-byte-label",
        "fifty-metadata",
        "empty-metadata",
        "no-event-id",
        "unknown-member",
        "base64",
        "text",
        "zulu-time",
    ],
)
def test_bodies_the_contract_accepts(fake: Hook0Fake, api: httpx.Client, changes: dict) -> None:
    response = api.post("/event/", json=event_body(**changes))

    assert response.status_code == 201, response.text
    assert fake.schemas.errors("IngestedEvent", response.json()) == []
    assert [event.event_id for event in fake.events] == [response.json()["event_id"]]


def test_payloads_are_recorded_parsed(fake: Hook0Fake, api: httpx.Client) -> None:
    base64_body = event_body(
        payload="aGVsbG8=", payload_content_type="application/octet-stream+base64"
    )
    generated = api.post("/event", json=event_body(event_id=MISSING)).json()["event_id"]
    api.post("/event", json=base64_body)

    first, second = fake.events
    assert uuid.UUID(generated).version == 7
    assert (first.event_id, first.payload) == (generated, {"id": 7})
    assert (second.payload, second.raw_payload) == (b"hello", "aGVsbG8=")


def test_an_event_id_is_ingested_once(fake: Hook0Fake, api: httpx.Client) -> None:
    body = event_body()
    assert api.post("/event/", json=body).status_code == 201

    assert_problem(fake, api.post("/event/", json=body), 409, "EventAlreadyIngested")
    assert len(fake.events) == 1


def test_a_body_not_declared_as_json_is_refused_and_flagged(
    fake: Hook0Fake, api: httpx.Client
) -> None:
    headers = {"Content-Type": "text/plain"}
    response = api.post("/event/", content=json.dumps(event_body()), headers=headers)

    document = assert_problem(fake, response, 400, "JsonPayload")
    assert "Content-Type" in document["detail"]
    [violation] = fake.violations
    assert (violation.header, violation.received) == ("Content-Type", "text/plain")


def test_a_body_over_2_mib_is_refused_and_the_connection_survives(
    fake: Hook0Fake, api: httpx.Client
) -> None:
    oversized = event_body(payload="x" * MAX_BODY_BYTES)

    response = api.post("/event/", json=oversized)

    document = assert_problem(fake, response, 400, "JsonPayload")
    assert document["detail"] == "Body is too big (maximum is 2097152 bytes)"
    assert api.post("/event/", json=event_body()).status_code == 201


@pytest.mark.parametrize(
    ("authorization", "status", "problem"),
    [
        (None, 401, "AuthNoAuthorizationHeader"),
        ("Bearer not-a-known-token", 403, "AuthInvalidBiscuit"),
        (f"Basic {TOKEN}", 403, "AuthInvalidBiscuit"),
    ],
    ids=["missing", "unknown-token", "not-bearer"],
)
def test_requests_without_a_valid_token_are_refused(
    fake: Hook0Fake, authorization: str | None, status: int, problem: str
) -> None:
    headers = {k: v for k, v in CONFORMANT_HEADERS.items() if k != "Authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization

    response = httpx.post(f"{fake.api_url}/event/", json=event_body(), headers=headers)

    assert_problem(fake, response, status, problem)
    assert fake.events == []


def test_a_missing_header_is_recorded_as_a_conformance_violation(fake: Hook0Fake) -> None:
    headers = {k: v for k, v in CONFORMANT_HEADERS.items() if k != "Hook0-Client-Options"}

    response = httpx.post(f"{fake.api_url}/event/", json=event_body(), headers=headers)

    assert response.status_code == 201
    [violation] = fake.violations
    assert (violation.method, violation.path) == ("POST", "/api/v1/event/")
    assert (violation.header, violation.received, violation.reason) == (
        "Hook0-Client-Options",
        None,
        "missing",
    )


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("User-Agent", "hook0-client-python/ (CPython 3.11; Linux x86_64)", "does not match"),
        ("User-Agent", "hook0-client-rust/1.0 (rustc; Linux)", "does not match"),
        ("User-Agent", f"hook0-client-python/2 ({'x' * 300}; Linux)", "longer than the 256"),
        ("Hook0-Client-Options", "attempts=4,backoff=100ms,ceiling=2000,budget=5000", "backoff"),
        ("Hook0-Client-Options", "backoff=100,attempts=4,ceiling=2000,budget=5000", "does not"),
        ("Accept", "*/*", "does not match"),
        ("Authorization", f"bearer {TOKEN}", "does not match"),
    ],
    ids=["empty-hole", "other-language", "too-long", "unit-suffix", "reordered", "accept", "case"],
)
def test_malformed_headers_are_recorded_as_violations(
    fake: Hook0Fake, api: httpx.Client, header: str, value: str, reason: str
) -> None:
    api.get("/event_types/", params={"application_id": APP}, headers={header: value})

    [violation] = fake.violations
    assert (violation.header, violation.received) == (header, value)
    assert reason in violation.reason


def test_header_names_are_matched_without_regard_to_case(fake: Hook0Fake) -> None:
    headers = {name.lower(): value for name, value in CONFORMANT_HEADERS.items()}

    response = httpx.post(f"{fake.api_url}/event/", json=event_body(), headers=headers)

    assert response.status_code == 201
    assert fake.violations == []
    assert (
        fake.requests[0].headers["hook0-client-options"]
        == CONFORMANT_HEADERS["Hook0-Client-Options"]
    )


# Event types.


def test_event_types_are_listed_as_the_spec_declares(fake: Hook0Fake, api: httpx.Client) -> None:
    fake.declare_event_type(APP, "wal2http.row.deleted")

    response = api.get("/event_types/", params={"application_id": APP})

    assert response.status_code == 200
    listed = response.json()
    assert [entry["event_type_name"] for entry in listed] == [
        "wal2http.row.deleted",
        "wal2http.row.inserted",
    ]
    assert listed[0] == {
        "service_name": "wal2http",
        "resource_type_name": "row",
        "verb_name": "deleted",
        "event_type_name": "wal2http.row.deleted",
    }
    assert all(fake.schemas.errors("EventType", entry) == [] for entry in listed)


def test_creating_an_event_type_is_an_upsert(fake: Hook0Fake, api: httpx.Client) -> None:
    body = {"application_id": APP, "service": "wal2http", "resource_type": "row", "verb": "updated"}

    first = api.post("/event_types/", json=body)
    second = api.post("/event_types", json=body)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    assert first.json()["event_type_name"] == "wal2http.row.updated"
    assert fake.event_types(APP) == ["wal2http.row.inserted", "wal2http.row.updated"]


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (
            {"application_id": APP, "service": "wal2http", "resource_type": "row"},
            400,
            "JsonPayload",
        ),
        (
            {"application_id": APP, "service": "wal2http", "resource_type": "row-x", "verb": "a"},
            422,
            "Validation",
        ),
        (
            {"application_id": APP, "service": "s" * 51, "resource_type": "row", "verb": "a"},
            422,
            "Validation",
        ),
        (
            {"application_id": OTHER_APP, "service": "s", "resource_type": "row", "verb": "a"},
            403,
            "Forbidden",
        ),
    ],
    ids=["missing-verb", "dash-in-part", "part-over-50", "other-application"],
)
def test_event_type_bodies_the_contract_refuses(
    fake: Hook0Fake, api: httpx.Client, body: dict, status: int, problem: str
) -> None:
    assert_problem(fake, api.post("/event_types/", json=body), status, problem)
    assert fake.event_types(APP) == [EVENT_TYPE]


@pytest.mark.parametrize(
    ("params", "status", "problem"),
    [({}, 400, "JsonPayload"), ({"application_id": "nope"}, 400, "JsonPayload")],
    ids=["missing", "not-a-uuid"],
)
def test_listing_needs_an_application_id(
    fake: Hook0Fake, api: httpx.Client, params: dict, status: int, problem: str
) -> None:
    assert_problem(fake, api.get("/event_types/", params=params), status, problem)


def test_listing_another_application_is_forbidden(fake: Hook0Fake, api: httpx.Client) -> None:
    response = api.get("/event_types/", params={"application_id": OTHER_APP})

    assert_problem(fake, response, 403, "Forbidden")


def test_unknown_paths_and_methods(fake: Hook0Fake, api: httpx.Client) -> None:
    assert_problem(fake, api.get("/applications/"), 404, "NotFound")
    response = api.get("/event/")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


# Fault injection.


def test_canned_answers_replace_the_next_event_posts_only(
    fake: Hook0Fake, api: httpx.Client
) -> None:
    fake.fail_next(2, status=503, problem="ServiceUnavailable", retry_after=3)

    listing = api.get("/event_types/", params={"application_id": APP})
    answers = [api.post("/event/", json=event_body()) for _ in range(3)]

    assert listing.status_code == 200
    for refused in answers[:2]:
        assert_problem(fake, refused, 503, "ServiceUnavailable")
        assert refused.headers["retry-after"] == "3"
    assert answers[2].status_code == 201
    assert len(fake.events) == 1


def test_a_canned_answer_keeps_the_status_it_was_given(fake: Hook0Fake, api: httpx.Client) -> None:
    fake.fail_next(1, status=502, problem="InternalServerError", detail="upstream went away")

    response = api.post("/event/", json=event_body())

    document = assert_problem(fake, response, 502, "InternalServerError")
    assert document["detail"] == "upstream went away"
    assert "retry-after" not in response.headers


def test_a_canned_answer_must_be_a_problem_the_spec_declares(fake: Hook0Fake) -> None:
    with pytest.raises(ValueError, match="NoSuchProblem"):
        fake.fail_next(1, status=500, problem="NoSuchProblem")


def test_rate_limit_refuses_beyond_the_burst_per_token(fake: Hook0Fake, api: httpx.Client) -> None:
    fake.rate_limit(burst=3, per_second=0.5)

    statuses = [api.post("/event/", json=event_body()).status_code for _ in range(3)]
    refused = api.post("/event/", json=event_body())
    other_token = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    other = api.post("/event/", json=event_body(application_id=OTHER_APP), headers=other_token)

    assert statuses == [201, 201, 201]
    assert_problem(fake, refused, 429, "RateLimited")
    assert refused.headers["retry-after"] == "1"
    assert other.status_code == 201
    fake.rate_limit(None)
    assert api.post("/event/", json=event_body()).status_code == 201


def test_latency_delays_every_answer(fake: Hook0Fake, api: httpx.Client) -> None:
    fake.latency = 0.2

    started = time.monotonic()
    response = api.get("/event_types/", params={"application_id": APP})

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


# Recording and lifecycle.


def test_wait_for_events_returns_once_they_arrived(fake: Hook0Fake) -> None:
    bodies = [event_body() for _ in range(3)]

    def send_later() -> None:
        time.sleep(0.05)
        with httpx.Client(base_url=fake.api_url, headers=CONFORMANT_HEADERS) as client:
            for body in bodies:
                client.post("/event/", json=body)

    sender = threading.Thread(target=send_later)
    sender.start()
    arrived = fake.wait_for_events(3, timeout=5)
    sender.join()

    assert [event.event_id for event in arrived] == [body["event_id"] for body in bodies]
    with pytest.raises(TimeoutError, match="3 of 4 events"):
        fake.wait_for_events(4, timeout=0.05)


def test_thousands_of_keep_alive_requests(fake: Hook0Fake) -> None:
    def send(count: int) -> list[str]:
        sent = []
        with httpx.Client(base_url=fake.api_url, headers=CONFORMANT_HEADERS) as client:
            for _ in range(count):
                body = event_body()
                assert client.post("/event/", json=body).status_code == 201
                sent.append(body["event_id"])
        return sent

    with ThreadPoolExecutor(4) as pool:
        sent = [event_id for batch in pool.map(send, [500] * 4) for event_id in batch]

    assert sorted(event.event_id for event in fake.events) == sorted(sent)
    assert fake.status_counts == {201: 2000}
    assert fake.violations == []


def test_stop_closes_idle_keep_alive_connections(fake: Hook0Fake, api: httpx.Client) -> None:
    assert api.post("/event/", json=event_body()).status_code == 201

    started = time.monotonic()
    fake.stop()

    assert time.monotonic() - started < 2
    with pytest.raises(httpx.TransportError):
        api.post("/event/", json=event_body())


def test_a_missing_contract_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "openapi.snapshot.json"

    with pytest.raises(FileNotFoundError, match=r"openapi\.snapshot\.json"):
        Hook0Fake({APP: [TOKEN]}, spec_path=missing)
