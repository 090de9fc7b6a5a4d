"""Web chat in a real browser (Chromium, driven by Playwright) against a real server.

The server is the app under uvicorn on a free port, on SQLite, with a real clock and its
background work; the test speaks to its API as an integrator with the organization's API key.
Without Chromium (/usr/bin/chromium) or Playwright these tests are skipped with a message, unless
CHATFLOW_TEST_REQUIRE_SERVICES=1 (as in CI), which makes that a failure.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from chatflow.app import create_app
from chatflow.cli import uvicorn_options
from chatflow.clock import SystemClock
from chatflow.config import Settings
from chatflow.services import accounts
from chatflow.services.passwords import hash_password
from chatflow.storage.database import Database
from chatflow.storage.migrate import upgrade

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, WebSocketRoute

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHATFLOW_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_SERVICES = os.environ.get("CHATFLOW_TEST_REQUIRE_SERVICES") == "1"
TIMEOUT_MS = 10_000

Json = dict[str, Any]


def _unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(message + " — but CHATFLOW_TEST_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


# -- the server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    api: httpx.Client
    """The integrator: the organization's API key."""

    def ok(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        response = self.api.request(method, path, json=json, params=params or None)
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    def events(self, **params: Any) -> list[Json]:
        found: list[Json] = self.ok("GET", "/v1/events", limit=100, **params)["data"]
        return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('webchat') / 'chatflow.db'}"
    upgrade(url)
    database = Database(url, SystemClock())
    database.start()
    try:
        made = database.write_sync(
            lambda tx: accounts.do_bootstrap(
                tx,
                org_name="Shop",
                admin_email="admin@shop.example",
                admin_password="correct horse battery staple",
                password_hash=hash_password("correct horse battery staple"),
            )
        )
    finally:
        database.close()
    port = _free_port()
    settings = Settings(database_url=url, background_work=True, host="127.0.0.1", port=port)
    config = uvicorn.Config(
        create_app(settings),
        # As `chatflow serve` runs it: the same loop and HTTP protocol.
        **uvicorn_options(settings, log_level="warning", access_log=False),
        ws="websockets-sansio",
        lifespan="on",
    )
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, name="webchat-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not runner.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 20 s"
        time.sleep(0.02)
    base_url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {made.api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as api:
        yield LiveServer(base_url, api)
    runner.should_exit = True
    thread.join(timeout=20)


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright is not installed ({exc}); the browser tests are skipped")
        raise
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
        except Error as exc:
            _unavailable(f"Chromium at {CHROMIUM} does not start ({exc})")
            raise
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


# -- steps ------------------------------------------------------------------------------------


def _webchat(server: LiveServer, **config: Any) -> str:
    channel = server.ok(
        "POST", "/v1/channels", {"type": "webchat", "name": "Shop help", "config": config}
    )
    key: str = channel["config"]["key"]
    return key


def _start(page: Page, name: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Shop help")).to_be_visible()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(f"{name.lower().replace(' ', '.')}@example.com")
    page.get_by_role("button", name="Start chatting").click()
    expect(page.get_by_label("Your message")).to_be_visible()


def _write(page: Page, text: str) -> str:
    """Send `text` as the customer; its id once the server has stored it."""
    from playwright.sync_api import expect

    page.get_by_label("Your message").fill(text)
    page.keyboard.press("Enter")
    stored = page.locator("li.message--customer[data-id]").filter(has_text=text)
    expect(stored).to_have_count(1)
    message_id = stored.get_attribute("data-id")
    assert message_id is not None
    return message_id


def _business(page: Page, text: str) -> Locator:
    return page.locator("li.message--business").filter(has_text=text)


def _contact_named(server: LiveServer, name: str) -> Json:
    created: list[Json] = [e["data"]["contact"] for e in server.events(type="contact.created")]
    (contact,) = [c for c in created if c["first_name"] == name]
    return contact


def _only_room(server: LiveServer, name: str) -> str:
    contact = _contact_named(server, name)
    rooms: list[Json] = server.ok("GET", "/v1/chatrooms", limit=100)["data"]
    (room,) = [str(r["id"]) for r in rooms if r["contact_id"] == contact["id"]]
    return room


def _template(server: LiveServer) -> Json:
    name = f"feedback_{uuid.uuid4().hex[:8]}"
    template: Json = server.ok(
        "POST",
        "/v1/templates",
        {
            "name": name,
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Quick question"},
                {"type": "BODY", "text": "Did we solve your problem?"},
                {"type": "FOOTER", "text": "Shop help"},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Yes, thanks"},
                        {"type": "QUICK_REPLY", "text": "Not yet"},
                    ],
                },
            ],
        },
    )
    approved: Json = server.ok("POST", f"/v1/templates/{template['id']}/approve")
    return approved


def _send_template(server: LiveServer, chatroom_id: str, template: Json, **flags: bool) -> Json:
    response = server.api.post(
        f"/v1/chatrooms/{chatroom_id}/template-messages",
        json={"template": template["name"], "language": template["language"], "variables": {}},
        params={k: str(v).lower() for k, v in flags.items()},
    )
    assert response.status_code == 201, response.text
    sent: Json = response.json()
    return sent


# -- the scenarios ----------------------------------------------------------------------------


def test_a_customer_chats_with_an_integrator_taps_a_template_and_relay_and_handover_fire_r6_r8(
    server: LiveServer, page: Page
) -> None:
    from playwright.sync_api import expect

    key = _webchat(server, welcome_text="Hi! Ask us anything.")
    agent = server.ok(
        "POST",
        "/v1/agents",
        {"email": f"{uuid.uuid4().hex[:8]}@shop.example", "name": "Ada", "password": "x" * 12},
    )
    page.goto(f"{server.base_url}/chat/{key}")
    expect(page.get_by_text("Hi! Ask us anything.")).to_be_visible()
    _start(page, "Grace Hopper")
    # The integrator learns of the new contact and opens a chatroom that Ada joins at handover.
    contact = _contact_named(server, "Grace Hopper")
    server.ok("PATCH", f"/v1/contacts/{contact['id']}", {"opted_in": True})
    channel_id = next(
        c["id"] for c in server.ok("GET", "/v1/channels")["data"] if c["config"].get("key") == key
    )
    room = server.ok(
        "POST",
        "/v1/chatrooms",
        {
            "contact_id": contact["id"],
            "channel_id": channel_id,
            "participants": [agent["id"]],
            "assign_on_handover": True,
        },
    )
    assert room["pending_agent_ids"] == [agent["id"]]

    hello_id = _write(page, "Hello")

    messages = server.ok("GET", f"/v1/chatrooms/{room['id']}/messages")["data"]
    assert [(m["id"], m["text"], m["direction"]) for m in messages] == [
        (hello_id, "Hello", "inbound")
    ]
    # R8: the first free-flow message hands over to the pending agent.
    joined = server.ok("GET", f"/v1/chatrooms/{room['id']}")
    assert [p["agent_id"] for p in joined["participants"]] == [agent["id"]]
    assigned = server.events(type="chatroom.assigned", chatroom_id=room["id"])
    assert [(e["data"]["reason"], e["data"]["agent_ids"]) for e in assigned] == [
        ("handover", [agent["id"]])
    ]

    server.ok(
        "POST",
        f"/v1/chatrooms/{room['id']}/messages",
        {"text": "Hi Grace, how can we help?", "as_agent_id": agent["id"]},
    )
    reply = _business(page, "Hi Grace, how can we help?")
    expect(reply).to_be_visible()
    expect(reply).to_contain_text("Ada")

    template = _template(server)
    sent = _send_template(server, room["id"], template, relay_response=True)
    card = page.locator(f'li[data-id="{sent["id"]}"]')
    expect(card).to_contain_text("Quick question")
    expect(card).to_contain_text("Did we solve your problem?")
    expect(card).to_contain_text("Shop help")
    card.get_by_role("button", name="Not yet").click()

    tap = page.locator("li.message--customer[data-id]").filter(has_text="Not yet")
    expect(tap).to_have_count(1)
    expect(card.get_by_role("button", name="Yes, thanks")).to_be_disabled()
    expect(card.get_by_role("button", name="Not yet")).to_be_disabled()
    # R6: the tap on a template sent with relay_response=true is a template.response.
    [relayed] = server.events(type="template.response", chatroom_id=room["id"])
    assert relayed["data"]["message_id"] == tap.get_attribute("data-id")
    assert relayed["data"]["template_message_id"] == sent["id"]
    assert relayed["data"]["button"] == {
        "index": 1,
        "text": "Not yet",
        "payload": f"cf1:{sent['id']}:1",
    }
    assert relayed["data"]["contact"]["id"] == contact["id"]


def test_a_tap_on_a_template_sent_without_relay_hands_over_r8(
    server: LiveServer, page: Page
) -> None:
    from playwright.sync_api import expect

    key = _webchat(server)
    agent = server.ok(
        "POST",
        "/v1/agents",
        {"email": f"{uuid.uuid4().hex[:8]}@shop.example", "name": "Bob", "password": "x" * 12},
    )
    page.goto(f"{server.base_url}/chat/{key}")
    _start(page, "Alan Turing")
    contact = _contact_named(server, "Alan Turing")
    server.ok("PATCH", f"/v1/contacts/{contact['id']}", {"opted_in": True})
    channel_id = next(
        c["id"] for c in server.ok("GET", "/v1/channels")["data"] if c["config"].get("key") == key
    )
    room = server.ok(
        "POST",
        "/v1/chatrooms",
        {
            "contact_id": contact["id"],
            "channel_id": channel_id,
            "participants": [agent["id"]],
            "assign_on_handover": True,
        },
    )
    sent = _send_template(server, room["id"], _template(server), relay_response=False)

    page.locator(f'li[data-id="{sent["id"]}"]').get_by_role("button", name="Yes, thanks").click()

    expect(
        page.locator("li.message--customer[data-id]").filter(has_text="Yes, thanks")
    ).to_have_count(1)
    joined = server.ok("GET", f"/v1/chatrooms/{room['id']}")
    assert [p["agent_id"] for p in joined["participants"]] == [agent["id"]]
    assigned = server.events(type="chatroom.assigned", chatroom_id=room["id"])
    assert [e["data"]["reason"] for e in assigned] == ["handover"]
    assert server.events(type="template.response", chatroom_id=room["id"]) == []


def test_a_reload_keeps_the_conversation(server: LiveServer, page: Page) -> None:
    from playwright.sync_api import expect

    key = _webchat(server)
    page.goto(f"{server.base_url}/chat/{key}")
    _start(page, "Ada Lovelace")
    _write(page, "Is my order on its way?")
    room = _only_room(server, "Ada Lovelace")
    server.ok("POST", f"/v1/chatrooms/{room}/messages", {"text": "It ships today."})
    expect(_business(page, "It ships today.")).to_be_visible()

    page.reload()

    expect(page.get_by_label("Your message")).to_be_visible()
    expect(page.get_by_label("Name")).to_be_hidden()
    bubbles = page.locator("li.message[data-id]")
    expect(bubbles).to_have_count(2)
    expect(bubbles.nth(0)).to_contain_text("Is my order on its way?")
    expect(bubbles.nth(1)).to_contain_text("It ships today.")
    server.ok("POST", f"/v1/chatrooms/{room}/messages", {"text": "Still here after the reload"})
    expect(_business(page, "Still here after the reload")).to_be_visible()


class Connection:
    """The page's WebSocket, through the browser's own proxy (Playwright routes), so that the
    test can cut it and refuse new ones, as a network that went down would."""

    def __init__(self, page: Page) -> None:
        self.down = False
        self._open: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        page.route_web_socket("**/stream", self._handle)

    def _handle(self, route: WebSocketRoute) -> None:
        if self.down:
            route.close(code=1011, reason="network down")
            return
        self._open.append((route, route.connect_to_server()))

    def cut(self) -> None:
        self.down = True
        for to_page, to_server in self._open:
            to_server.close()
            to_page.close(code=1011, reason="network down")
        self._open.clear()


def test_what_is_sent_while_the_connection_is_down_shows_after_it_comes_back(
    server: LiveServer, page: Page
) -> None:
    from playwright.sync_api import expect

    connection = Connection(page)
    key = _webchat(server)
    page.goto(f"{server.base_url}/chat/{key}")
    _start(page, "Katherine Johnson")
    _write(page, "Hello")
    room = _only_room(server, "Katherine Johnson")
    server.ok("POST", f"/v1/chatrooms/{room}/messages", {"text": "Before the cut"})
    expect(_business(page, "Before the cut")).to_be_visible()
    live = page.locator("html[data-live=true]")
    expect(live).to_have_count(1)

    connection.cut()
    page.context.set_offline(True)
    expect(page.locator("html[data-live=false]")).to_have_count(1)
    expect(page.get_by_text("Reconnecting…")).to_be_visible()
    server.ok("POST", f"/v1/chatrooms/{room}/messages", {"text": "Sent while you were away"})
    page.get_by_label("Your message").fill("Written while offline")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Not sent yet; trying again…")).to_be_visible()
    assert _business(page, "Sent while you were away").count() == 0
    connection.down = False
    page.context.set_offline(False)

    expect(_business(page, "Sent while you were away")).to_be_visible()
    expect(live).to_have_count(1)
    written = page.locator("li.message--customer[data-id]").filter(has_text="Written while offline")
    expect(written).to_have_count(1)
    expect(page.locator("li.message[data-id]")).to_have_count(4)
    texts = [m["text"] for m in server.ok("GET", f"/v1/chatrooms/{room}/messages")["data"]]
    assert sorted(texts) == sorted(
        ["Hello", "Before the cut", "Sent while you were away", "Written while offline"]
    )


@pytest.fixture(scope="module")
def shop(server: LiveServer) -> Iterator[str]:
    """A business's site on another origin (another host name, another port): `/{key}` is a page
    with the embed snippet of that web chat. On loopback like the server, as browsers do not let
    a public page load from a private address."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            key = self.path.strip("/")
            body = (
                "<!doctype html><title>Shop</title><h1>Our shop</h1>"
                f'<script src="{server.base_url}/chat/{key}/embed.js" async></script>'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, name="shop-site", daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


def test_the_embed_snippet_opens_the_chat_in_a_frame_on_an_allowed_site(
    server: LiveServer, shop: str, page: Page
) -> None:
    from playwright.sync_api import expect

    allowed = _webchat(server, allowed_origins=[shop])
    refused = _webchat(server, allowed_origins=["https://elsewhere.example"])

    page.goto(f"{shop}/{allowed}")
    button = page.get_by_role("button", name="Chat with us")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    chat = page.frame_locator("iframe[data-chatflow-webchat]")
    chat.get_by_label("Name").fill("Embedded")
    chat.get_by_role("button", name="Start chatting").click()
    chat.get_by_label("Your message").fill("Hello from the shop's site")
    chat.get_by_label("Your message").press("Enter")
    expect(
        chat.locator("li.message--customer[data-id]").filter(has_text="Hello from the shop's site")
    ).to_have_count(1)
    chat.get_by_role("button", name="Close the chat").click()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(page.locator("iframe[data-chatflow-webchat]")).to_be_hidden()

    page.goto(f"{shop}/{refused}")
    with page.expect_response(f"**/chat/{refused}") as framed:
        page.get_by_role("button", name="Chat with us").click()
    assert framed.value.status == 200
    frame = page.locator("iframe[data-chatflow-webchat]").element_handle().content_frame()
    assert frame is not None
    frame.wait_for_load_state()
    # frame-ancestors: the browser shows an error instead of the page inside another site.
    assert frame.url.startswith("chrome-error://"), frame.url
