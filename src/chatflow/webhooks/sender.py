"""One webhook attempt over HTTP: check the URL, connect to the checked address, post, record.

DNS rebinding: a host may resolve to a public address when checked and to 127.0.0.1 a moment
later. So each attempt resolves the host once, through the guard (`UrlGuard.resolve`), and the
connection pool's resolver hands out exactly those checked addresses: it never looks a name up
itself, so no second answer can differ from the checked one. The request keeps its URL, so the
`Host` header, TLS SNI and certificate verification all use the real hostname, and pooled
connections are keyed by hostname: a TLS connection verified for one host is never reused for
another host that happens to share its IP address (as hosts behind a CDN do). A pooled connection
was checked when it was opened, so reusing it needs no new check; the attempt's own check still
refuses a name that now resolves to a forbidden address.

The pool is aiohttp's (`TCPConnector`): its cost per request stays flat with many connections in
flight. The guard parses URLs with yarl, aiohttp's own parser, so both agree on the host. The
session follows no redirect, reads no proxy from the environment, keeps no cookies (one
receiver's cookies must not reach another's URL) and decompresses nothing.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from chatflow.clock import Clock
from chatflow.domain.errors import WebhookUrlForbiddenError
from chatflow.webhooks.guard import IPAddress, UrlGuard

READ_LIMIT_BYTES = 64 * 1024
EXCERPT_CHARS = 1024
# Below the 5 s idle timeout of uvicorn and many other servers, so that a pooled connection is
# rarely closed by the receiver just as a request goes out on it.
KEEPALIVE_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt produced.

    `status_code` is None when no HTTP answer came (timeout, refused, URL forbidden). When the
    answer came but its body did not (timeout or broken connection while reading it), the status
    stands and `error` says what happened to the body.
    """

    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None
    retry_after_seconds: float | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks for the endpoint to be disabled (Standard Webhooks)."""
        return self.status_code == 410


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What a general request produced; `status_code` None: no HTTP answer (see `error`)."""

    status_code: int | None
    headers: dict[str, str]
    body: bytes
    truncated: bool
    """The body was longer than the read limit and was cut there."""
    error: str | None
    latency_ms: int


@dataclass(frozen=True, slots=True)
class _CheckedAddresses:
    host: str
    addresses: list[IPAddress]


_checked_addresses: ContextVar[_CheckedAddresses | None] = ContextVar(
    "webhook_checked_addresses", default=None
)


class _CheckedAddressResolver(AbstractResolver):
    """Answers with the addresses the guard checked for the current attempt, never a lookup.

    aiohttp opens a connection in the task of the request that will use it and, with its DNS
    cache off, calls the resolver right there, so the context variable set by
    `WebhookSender.send` is visible here. IP literals never reach a resolver: aiohttp connects to
    them as they are, and the guard checked that very literal.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        checked = _checked_addresses.get()
        if checked is None or checked.host != host:
            raise OSError(f"no checked address for {host}; it is not resolved again")
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )
            for address in checked.addresses
        ]

    async def close(self) -> None:
        """Nothing to release: no lookups, no cache."""


@dataclass(slots=True)
class _Exchange:
    """What is known of the attempt so far; it survives the timeout that interrupts it."""

    status_code: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    error: str | None = None
    truncated: bool = False


class WebhookSender:
    """Posts webhook attempts through one keep-alive connection pool.

    It may be built outside any event loop; its pool is opened on first use, in the running loop.
    Use it from that loop only, and `aclose` it there (after which another loop may use it).
    """

    def __init__(
        self,
        guard: UrlGuard,
        *,
        clock: Clock,
        timeout_seconds: float = 15.0,
        max_connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context` None verifies certificates against the system's trusted CAs."""
        self.guard = guard
        self._clock = clock
        self._timeout_seconds = timeout_seconds
        self._max_connections = max_connections
        self._ssl: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> AttemptResult:
        """POST `body` to `url`; network and HTTP problems come back in the result, never raised.

        The timeout bounds the whole attempt: resolving, connecting, sending, and reading at most
        64 KiB of the response.
        """
        exchange, latency_ms = await self._perform(
            "POST", url, headers, body, self._timeout_seconds, READ_LIMIT_BYTES
        )
        return self._result(exchange, latency_ms)

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        timeout_seconds: float,
        read_limit: int,
    ) -> HttpAnswer:
        """Any request behind the same guard (a flow's HTTP Request step); never raises."""
        exchange, latency_ms = await self._perform(
            method, url, headers, body, timeout_seconds, read_limit
        )
        return HttpAnswer(
            status_code=exchange.status_code,
            headers={
                name.lower(): _header(exchange.headers, name) or "" for name in exchange.headers
            },
            body=bytes(exchange.body),
            truncated=exchange.truncated,
            error=exchange.error,
            latency_ms=latency_ms,
        )

    async def _perform(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_seconds: float,
        read_limit: int,
    ) -> tuple[_Exchange, int]:
        started = time.perf_counter()
        session = self._session_in_this_loop()
        exchange = _Exchange()
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._attempt(session, method, url, headers, body, read_limit, exchange)
        except TimeoutError:
            exchange.error = f"timeout after {timeout_seconds} s"
        except WebhookUrlForbiddenError as exc:
            exchange.error = f"url_forbidden: {exc.detail}"
        except aiohttp.ClientConnectorError as exc:
            exchange.error = _connect_failure(exc)
        except aiohttp.InvalidURL as exc:
            exchange.error = f"invalid URL: {_describe(exc)}"
        except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as exc:
            exchange.error = _protocol_failure(exc)
        except (aiohttp.ClientError, OSError) as exc:
            exchange.error = f"network error: {_describe(exc)}"
        return exchange, round((time.perf_counter() - started) * 1000)

    async def aclose(self) -> None:
        session, self._session, self._loop = self._session, None, None
        if session is not None:
            await session.close()

    def _session_in_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None:
            self._session = self._open_session()
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this WebhookSender's connections belong to another event loop; "
                "aclose it there before using it from this one"
            )
        return self._session

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            resolver=_CheckedAddressResolver(),
            # A cached answer would be a second answer; the resolver answers per attempt.
            use_dns_cache=False,
            ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector,
            # One deadline for the whole attempt, the guard's lookup included, is kept by
            # `send`; aiohttp's own timers (5 minutes by default) would only add cost.
            timeout=aiohttp.ClientTimeout(),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
        )

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        read_limit: int,
        exchange: _Exchange,
    ) -> None:
        addresses = await self.guard.resolve(url)
        target = URL(url)
        host = target.raw_host
        assert host is not None  # the guard refuses a URL without a host
        # The excerpt is read raw: asking for no compression keeps it readable, and a small
        # compressed body can never expand beyond the read limit.
        request_headers = {"accept-encoding": "identity"} | {
            name.lower(): value for name, value in headers.items()
        }
        token = _checked_addresses.set(_CheckedAddresses(host, addresses))
        try:
            await self._exchange(
                session, method, target, request_headers, body, read_limit, exchange
            )
        finally:
            _checked_addresses.reset(token)

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        target: URL,
        headers: dict[str, str],
        body: bytes | None,
        read_limit: int,
        exchange: _Exchange,
    ) -> None:
        async with session.request(
            method, target, data=body, headers=headers, allow_redirects=False
        ) as response:
            exchange.status_code = response.status
            exchange.headers = response.headers
            while len(exchange.body) < read_limit:
                chunk = await response.content.read(read_limit - len(exchange.body))
                if not chunk:
                    return  # read to its end: the connection goes back to the pool
                exchange.body += chunk
            if not response.content.at_eof():
                # Cut off: the rest is never read, so the connection cannot be reused.
                exchange.truncated = True
                response.close()

    def _result(self, exchange: _Exchange, latency_ms: int) -> AttemptResult:
        status = exchange.status_code
        error = exchange.error
        retry_after: float | None = None
        if status is not None:
            if error is not None:
                error = f"{error} while reading the response body"
            elif 300 <= status < 400:
                location = _header(exchange.headers, "location")
                where = "no Location" if location is None else _shorten(location, 200)
                error = f"redirect not followed ({status} to {where})"
            elif not 200 <= status < 300:
                error = f"HTTP {status}"
            if status >= 300:
                retry_after = _retry_after_seconds(
                    _header(exchange.headers, "retry-after"), self._clock.now()
                )
        return AttemptResult(
            status_code=status,
            latency_ms=latency_ms,
            error=error,
            response_excerpt=_excerpt(exchange.body),
            retry_after_seconds=retry_after,
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The header's value as text that can be stored: aiohttp keeps undecodable bytes as lone
    surrogates, which no UTF-8 column accepts."""
    value = headers.get(name)
    if value is None:
        return None
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; anything else is ignored."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _excerpt(body: bytearray) -> str | None:
    if not body:
        return None
    # 4 bytes per character at most in UTF-8: this slice holds the first 1,024 characters.
    return bytes(body[: EXCERPT_CHARS * 4]).decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _connect_failure(exc: aiohttp.ClientConnectorError) -> str:
    # aiohttp's wrappers subclass the SSL errors they wrap without their details: read the causes.
    causes = [cause for cause in _causes(exc) if not isinstance(cause, aiohttp.ClientError)]
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {cause.verify_message}"
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or cause}"
    # With several addresses, every one refusing comes back as one OSError with that errno.
    if any(isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED for cause in causes):
        return "connection refused"
    # The connector's own message names the SSL context object; the cause says what happened.
    return f"connection failed: {_describe(exc.os_error)}"


def _protocol_failure(exc: aiohttp.ClientError) -> str:
    # What the HTTP parser objected to; aiohttp's wrappers add a status code of their own.
    for cause in _causes(exc):
        if isinstance(cause, HttpProcessingError) and cause.message:
            return f"protocol error: {_shorten(_one_line(cause.message), 300)}"
    return f"protocol error: {_describe(exc)}"


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception, what caused it, and the members of exception groups, each once."""
    pending = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _describe(exc: BaseException) -> str:
    return _shorten(_one_line(str(exc)) or type(exc).__name__, 300)


def _one_line(text: str) -> str:
    return " ".join(text.split())
