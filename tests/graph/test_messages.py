import pytest

from agentflow.graph import InvalidUpdateError, add_messages, message_text


def test_plain_strings_become_user_messages_with_ids():
    merged = add_messages([], ["hello", "again"])
    assert [m["role"] for m in merged] == ["user", "user"]
    assert [m["content"] for m in merged] == ["hello", "again"]
    assert len({m["id"] for m in merged}) == 2


def test_a_single_message_is_appended():
    merged = add_messages(None, {"role": "assistant", "content": "hi"})
    assert merged == [{"role": "assistant", "content": "hi", "id": merged[0]["id"]}]


def test_a_message_with_a_known_id_replaces_it_in_place():
    first = add_messages([], [{"id": "a", "role": "user", "content": "one"}, "two"])
    merged = add_messages(first, {"id": "a", "role": "user", "content": "edited"})
    assert [m["content"] for m in merged] == ["edited", "two"]
    assert first[0]["content"] == "one", "the left list must not be modified"


def test_content_blocks_are_accepted_and_read_as_text():
    blocks = [
        {"type": "text", "text": "hel"},
        {"type": "image", "url": "x"},
        {"type": "text", "text": "lo"},
    ]
    merged = add_messages([], {"role": "user", "content": blocks})
    assert message_text(merged[0]) == "hello"


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (5, "messages[0] must be a string or an object"),
        ({"content": "x"}, "messages[0].role must be a non-empty string"),
        ({"role": "user", "content": 3}, "messages[0].content must be a string or a list"),
        ({"role": "user", "content": ["x"]}, "messages[0].content[0] must be an object"),
        ({"role": "user", "content": [{"type": "text"}]}, "text block without a string 'text'"),
    ],
)
def test_bad_messages_are_refused_with_their_position(message, problem):
    with pytest.raises(InvalidUpdateError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        add_messages([], [message])
