"""Every kind of bad input gets a 4xx JSON error naming the problem, never a traceback."""

import uuid

import httpx
import pytest

from tests.conftest import start_server


def assert_error(response: httpx.Response, status: int, code: str, *phrases: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body["metadata"]) == {"request_id", "timestamp"}
    error = body["error"]
    assert error["code"] == code
    for phrase in phrases:
        assert phrase in error["message"], error["message"]
    return error


async def test_malformed_json(client):
    response = await client.post(
        "/v1/graph/invoke", content=b'{"messages": [', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json", "not valid JSON")


@pytest.mark.parametrize(
    ("body", "phrases"),
    [
        ({"recursion_limit": "many"}, ["recursion_limit", "integer"]),
        ({"recursion_limit": 0}, ["recursion_limit", "greater than or equal to 1"]),
        ({"recursion_limit": 101}, ["recursion_limit", "less than or equal to 100"]),
        ({"messages": 5}, ["messages", "list"]),
        ({"initial_state": []}, ["initial_state", "dictionary"]),
        ({"response_granularity": "all"}, ["response_granularity", "'low', 'partial' or 'full'"]),
        ({}, ["body", "nothing to do: send at least one message"]),
        ({"messages": []}, ["body", "nothing to do"]),
        ({"messages": [{"role": "bogus", "content": "x"}]}, ["messages", "role must be one of"]),
        ({"messages": ["hi"], "recursion_limit": True}, ["recursion_limit", "integer"]),
        ({"config": {"thread_id": "x" * 129}}, ["config.thread_id", "1 to 128 characters"]),
        ({"config": {"thread_id": "../etc"}}, ["config.thread_id", "starting with a letter"]),
        ({"config": {"thread_id": True}}, ["config.thread_id"]),
    ],
)
async def test_wrong_types_and_values_name_the_field(client, body, phrases):
    response = await client.post("/v1/graph/invoke", json=body)
    error = assert_error(response, 422, "invalid_request", *phrases)
    assert error["details"][0]["field"] == phrases[0]
    assert {"loc", "msg", "type"} <= set(error["details"][0])  # agentflow's shape


async def test_unknown_fields_are_ignored_and_integer_thread_ids_accepted_as_agentflow_does(
    client,
):
    thread = 700_000 + uuid.uuid4().int % 100_000
    body = {"messages": ["hi"], "recursion_limt": 5, "config": {"thread_id": thread}}
    response = await client.post("/v1/graph/invoke", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["meta"]["thread_id"] == str(thread)


async def test_a_malformed_message_is_named_by_position(client):
    response = await client.post("/v1/graph/invoke", json={"messages": ["ok", {"content": "x"}]})
    assert_error(response, 422, "invalid_request", "messages[1].role")


async def test_an_unknown_state_key_is_named(client):
    response = await client.post("/v1/graph/invoke", json={"initial_state": {"colour": "red"}})
    assert_error(response, 422, "invalid_input", "unknown state key 'colour'", "count")


@pytest.mark.parametrize("path", ["/v1/threads/nobody-{}", "/v1/threads/nobody-{}/history"])
async def test_unknown_thread(client, path):
    response = await client.get(path.format(uuid.uuid4().hex))
    assert_error(response, 404, "thread_not_found", "does not exist")


async def test_the_state_of_an_unknown_thread_is_null_as_agentflow_answers(client):
    response = await client.get(f"/v1/threads/nobody-{uuid.uuid4().hex}/state")
    assert response.status_code == 200
    assert response.json()["data"] == {"state": None}


@pytest.mark.parametrize(
    "thread_id",
    [
        "a" * 200,
        "bad%20id",
        "-leading-dash",
        "a'%3B%20DROP%20TABLE%20agentflow_checkpoints%3B--",  # SQL metacharacters
        "a%22%20OR%20%221%22%3D%221",
        "a%00b",
        "a%0D%0ASet-Cookie:x",  # header injection
        "a*",  # a Redis key pattern
    ],
)
async def test_odd_thread_ids_in_the_path(client, thread_id):
    response = await client.get(f"/v1/threads/{thread_id}/state")
    assert_error(response, 422, "invalid_request", "thread_id", "1 to 128 characters")


async def test_an_encoded_path_in_a_thread_id_reaches_no_route(client):
    response = await client.get("/v1/threads/..%2F..%2Fetc%2Fpasswd/state")
    assert_error(response, 404, "not_found", "Not Found")


async def test_a_body_over_the_limit_is_refused(client):
    big = {"initial_state": {"padding": "x" * (1024 * 1024)}}
    response = await client.post("/v1/graph/invoke", json=big)
    assert_error(response, 413, "payload_too_large", "limit of 1048576 bytes")


async def test_a_chunked_body_over_the_limit_is_refused(client):
    async def chunks():
        yield b'{"initial_state": {"padding": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}}'

    response = await client.post(
        "/v1/graph/invoke", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


async def test_resume_without_an_interrupt(client):
    thread = f"r-{uuid.uuid4().hex}"
    await client.post(
        "/v1/graph/invoke", json={"messages": ["hi"], "config": {"thread_id": thread}}
    )
    response = await client.post(
        "/v1/graph/invoke", json={"resume": "yes", "config": {"thread_id": thread}}
    )
    assert_error(response, 409, "nothing_to_resume", thread, "no pending interrupt")


async def test_new_input_on_a_parked_thread(client):
    thread = f"p-{uuid.uuid4().hex}"
    await client.post(
        "/v1/graph/invoke", json={"initial_state": {"ask": True}, "config": {"thread_id": thread}}
    )
    response = await client.post(
        "/v1/graph/invoke", json={"messages": ["hello?"], "config": {"thread_id": thread}}
    )
    assert_error(response, 409, "interrupt_pending", "send 'resume'")


async def test_a_failing_node_is_a_500_json_error_and_the_last_checkpoint_stays(client):
    thread = f"f-{uuid.uuid4().hex}"
    await client.post(
        "/v1/graph/invoke", json={"messages": ["hi"], "config": {"thread_id": thread}}
    )
    response = await client.post(
        "/v1/graph/invoke", json={"initial_state": {"fail": True}, "config": {"thread_id": thread}}
    )
    assert_error(response, 500, "node_failed", "node 'work' failed", "RuntimeError")
    state = (await client.get(f"/v1/threads/{thread}/state")).json()["data"]["state"]
    assert state["count"] == 1
    assert not state.get("fail")


async def test_the_recursion_limit_is_reported(client):
    response = await client.post(
        "/v1/graph/invoke", json={"initial_state": {"loop": True}, "recursion_limit": 4}
    )
    assert_error(response, 500, "recursion_limit_reached", "recursion limit of 4 steps")


async def test_unknown_routes_and_methods(client):
    assert_error(await client.get("/v1/nothing"), 404, "not_found")
    assert_error(await client.get("/v1/graph/invoke"), 405, "method_not_allowed")


async def test_bad_put_state_and_stop_bodies(client):
    thread = f"b-{uuid.uuid4().hex}"
    response = await client.put(f"/v1/threads/{thread}/state", json={"values": {}})
    assert_error(response, 422, "invalid_request", "state")
    response = await client.put(f"/v1/threads/{thread}/state", json={"state": {"nope": 1}})
    assert_error(response, 422, "invalid_input", "unknown state key(s) nope")
    assert_error(await client.post("/v1/graph/stop", json={}), 422, "invalid_request", "thread_id")


async def test_the_server_keeps_serving_after_bad_input(client):
    await client.post(
        "/v1/graph/invoke", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert (await client.post("/v1/graph/invoke", json={"messages": ["hi"]})).status_code == 200


def test_a_bug_is_a_bare_500_logged_once(tmp_path):
    server = start_server(tmp_path, {"AGENTFLOW_GRAPH": "tests.graphs.broken_store:app"})
    try:
        response = httpx.post(f"{server.url}/v1/graph/invoke", json={"messages": ["hi"]})
        assert_error(response, 500, "internal_error", "unexpected error")
        assert "disk" not in response.text
    finally:
        server.stop()
    log = server.log()
    assert log.count("RuntimeError: the disk is on fire") == 1, log
    assert log.count("Traceback") == 1
    assert "Exception in ASGI application" not in log


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b'{"messages": ["hi"], "initial_state": {"sleep_s": NaN}}', "expected a JSON value"),
        (b'{"messages": ["\\ud800"]}', "surrogate"),
        (b'{"messages": ["a\\u0000b"]}', "NUL"),
        (b'{"messages": ["hi"], "config": {"k\\u0000": 1}}', "NUL"),
        (b'{"messages": ["\xff"]}', "UTF-8"),
        (b'{"messages": ["hi"], "initial_state": {"x": ' + b"[" * 1100 + b"]" * 1100 + b"}}", ""),
    ],
)
async def test_what_json_or_postgres_cannot_hold_is_invalid_json(client, body, phrase):
    response = await client.post(
        "/v1/graph/invoke", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json", phrase)


async def test_a_plain_backslash_u0000_text_is_not_a_nul(client):
    body = {"messages": ["a literal \\u0000 in text"]}
    assert (await client.post("/v1/graph/invoke", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/threads/typed-{}/state", {"state": {"count": "x"}}),
        ("POST", "/v1/graph/invoke", {"messages": ["hi"], "initial_state": {"count": "x"}}),
        ("POST", "/v1/graph/invoke", {"messages": ["hi"], "initial_state": {"sleep_s": [1]}}),
    ],
)
async def test_a_value_of_the_wrong_type_for_its_state_key_is_refused(client, method, path, body):
    response = await client.request(method, path.format(uuid.uuid4().hex), json=body)
    assert_error(response, 422, "invalid_input", "sets '")


@pytest.mark.parametrize("last_event_id", ["²", "1" * 5000, "-1", "1e3"])
async def test_an_odd_last_event_id_is_a_clear_422(client, last_event_id):
    response = await client.get(
        "/v1/threads/t/runs/r/stream", headers={"Last-Event-ID": last_event_id.encode()}
    )
    assert_error(response, 422, "invalid_request", "Last-Event-ID")


async def test_an_offset_past_any_list_is_refused_before_the_database(client):
    response = await client.get("/v1/threads", params={"offset": 10**20})
    assert_error(response, 422, "invalid_request", "offset")
