from tests.factories import Org


def test_basic_flow_r1(org: Org) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "hi")
    message = org.api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "hello"}, status=201
    )
    assert message["text"] == "hello"
