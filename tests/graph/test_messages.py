import pytest

from agentflow.graph import InvalidUpdateError, add_messages, message_text, remove_message


def test_plain_strings_become_agentflow_user_messages():
    merged = add_messages([], ["hello", "again"])
    assert [m["role"] for m in merged] == ["user", "user"]
    assert [m["content"] for m in merged] == [
        [{"type": "text", "text": "hello"}],
        [{"type": "text", "text": "again"}],
    ]
    assert len({m["message_id"] for m in merged}) == 2
    assert all(m["delta"] is False and m["metadata"] == {} for m in merged)
    assert all(isinstance(m["timestamp"], float) for m in merged)


def test_a_single_message_is_appended_in_agentflow_shape():
    merged = add_messages(None, {"role": "assistant", "content": "hi", "usages": {"total": 3}})
    message = merged[0]
    assert message == {
        "message_id": message["message_id"],
        "role": "assistant",
        "content": [{"type": "text", "text": "hi"}],
        "delta": False,
        "timestamp": message["timestamp"],
        "metadata": {},
        "usages": {"total": 3},  # other keys are kept
    }


def test_normalising_twice_changes_nothing():
    once = add_messages([], ["hi"])
    assert add_messages([], once) == once


def test_a_message_with_a_known_id_replaces_it_in_place():
    first = add_messages([], [{"message_id": "a", "role": "user", "content": "one"}, "two"])
    merged = add_messages(first, {"id": "a", "role": "user", "content": "edited"})  # id: alias
    assert [message_text(m) for m in merged] == ["edited", "two"]
    assert message_text(first[0]) == "one", "the left list must not be modified"


@pytest.mark.parametrize("no_id", [None, "", "0", 0])
def test_the_agentflow_clients_placeholder_ids_are_not_ids(no_id):
    # agentflow's client sends message_id "0" for every message it has not named.
    merged = add_messages([], [{"message_id": no_id, "role": "user", "content": c} for c in "ab"])
    assert len(merged) == 2
    assert len({m["message_id"] for m in merged}) == 2


def test_a_message_can_be_removed_by_id():
    first = add_messages([], [{"message_id": "a", "role": "user", "content": "x"}, "y"])
    assert [message_text(m) for m in add_messages(first, [remove_message("a")])] == ["y"]


def test_the_clients_own_fields_are_kept():
    sent = {
        "message_id": None,
        "role": "user",
        "content": [{"type": "text", "text": "hi", "annotations": []}],
        "delta": False,
        "timestamp": 1_730_000_000_000,
        "metadata": {"source": "web"},
    }
    message = add_messages([], [sent])[0]
    assert message["timestamp"] == 1_730_000_000_000
    assert message["metadata"] == {"source": "web"}
    assert message["content"] == sent["content"]


def test_content_blocks_are_accepted_and_read_as_text():
    blocks = [
        {"type": "text", "text": "hel"},
        {"type": "image", "media": {"kind": "url", "url": "x"}},
        {"type": "text", "text": "lo"},
    ]
    merged = add_messages([], {"role": "user", "content": blocks})
    assert message_text(merged[0]) == "hello"


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (5, "messages[0] must be a string or an object"),
        ({"content": "x"}, "messages[0].role must be one of user, assistant, system, tool"),
        ({"role": "bogus", "content": "x"}, "role must be one of user, assistant, system, tool"),
        ({"role": "user", "content": 3}, "messages[0].content must be a string or a list"),
        ({"role": "user", "content": ["x"]}, "messages[0].content[0] must be an object"),
        ({"role": "user", "content": [{"type": "text"}]}, "text block without a string 'text'"),
    ],
)
def test_bad_messages_are_refused_with_their_position(message, problem):
    with pytest.raises(InvalidUpdateError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        add_messages([], [message])
