"""WhatsApp's routes: Meta's webhook (verify handshake and signed notifications), and the
template operations that call Meta (submit for review, sync from the account)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import PlainTextResponse, Response
from typing_extensions import TypedDict

from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Db, Runtime, RuntimeDep
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response
from chatflow.api.schemas import Body
from chatflow.channels.base import ChannelContext
from chatflow.channels.whatsapp.graph import GraphClient, GraphError
from chatflow.channels.whatsapp.signature import signature_matches
from chatflow.domain.access import check_administers
from chatflow.domain.errors import (
    ChannelMismatchError,
    NotFoundError,
    ProviderError,
    SignatureMismatchError,
    ValidationError,
    VerifyTokenMismatchError,
)
from chatflow.domain.models import Channel, ChannelType, JsonObject, TemplateStatus
from chatflow.services import channels as channel_service
from chatflow.services import templates as template_service
from chatflow.services.provider_channels import ProviderChannels
from chatflow.views import TemplateRead, template_view

MAX_NOTIFICATION_BYTES = 1024 * 1024
"""Meta's notifications are a few KiB; anything this large is not one."""
_TEMPLATE_PAGE = "100"
_MAX_TEMPLATE_PAGES = 50

router = APIRouter(route_class=CompiledRoute, tags=["whatsapp"], responses=PROBLEM_RESPONSES)


async def _whatsapp_channel(
    channels: ProviderChannels, channel_id: str, *, fresh: bool = False
) -> tuple[Channel, JsonObject]:
    found = await channels.get(channel_id, fresh=fresh)
    if found is None or found[0].type is not ChannelType.WHATSAPP:
        raise NotFoundError(f"No WhatsApp channel {channel_id}")
    return found


@router.get("/channels/whatsapp/{channel_id}/webhook", response_class=PlainTextResponse)
async def verify_webhook(
    channel_id: str,
    runtime: RuntimeDep,
    mode: Annotated[str, Query(alias="hub.mode")] = "",
    verify_token: Annotated[str, Query(alias="hub.verify_token")] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=512)] = "",
) -> Response:
    """Meta's verify handshake: echo `hub.challenge` when the verify token is the channel's."""
    _, secrets = await _whatsapp_channel(runtime.provider_channels, channel_id, fresh=True)
    expected = str(secrets.get("verify_token", ""))
    if mode != "subscribe" or not expected or verify_token != expected:
        raise VerifyTokenMismatchError("hub.mode must be subscribe with the channel's verify token")
    return PlainTextResponse(challenge)


@router.post("/channels/whatsapp/{channel_id}/webhook")
async def receive_notification(request: Request, channel_id: str) -> Response:
    """A signed notification from Meta: checked on the raw body, stored, answered 200 at once;
    it is applied in the background. A bad signature stores nothing (401)."""
    body = await request.body()
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise ValidationError("The notification is too large")
    runtime: Runtime = request.app.state.runtime
    header = request.headers.get("x-hub-signature-256")
    channel, secrets = await _whatsapp_channel(runtime.provider_channels, channel_id)
    if not signature_matches(body, header, str(secrets.get("app_secret", ""))):
        # Perhaps signed with a secret newer than the one cached: ask the database.
        channel, secrets = await _whatsapp_channel(
            runtime.provider_channels, channel_id, fresh=True
        )
        if not signature_matches(body, header, str(secrets.get("app_secret", ""))):
            raise SignatureMismatchError("X-Hub-Signature-256 does not match the body")
    context: ChannelContext = request.app.state.channels
    await context.inbox.accept(channel, body)
    return Response(b'{"status":"received"}', 200, media_type="application/json")


# -- templates on the WhatsApp Business Account ----------------------------------------------


class TemplateSync(TypedDict):
    created: list[TemplateRead]
    updated: list[TemplateRead]
    unchanged: Annotated[int, Field(description="Templates that already matched the account.")]
    skipped: Annotated[
        list[dict[str, Any]],
        Field(description="Templates of the account chatflow cannot send, with the reason."),
    ]


class TemplateSubmission(Body):
    template_id: str = Field(max_length=40, examples=["tpl_01jd3m6x0v8k2c4w9a7b5e1f3g"])


def _graph(runtime: RuntimeDep) -> GraphClient:
    return GraphClient(
        runtime.settings.whatsapp_graph_base_url,
        timeout_seconds=runtime.settings.whatsapp_timeout_seconds,
    )


def _provider_error(exc: GraphError) -> ProviderError:
    return ProviderError(f"Meta's Graph API refused the request: {exc}", provider=exc.error)


@router.post(
    "/v1/channels/{channel_id}/templates/sync", tags=["templates"], response_model=TemplateSync
)
async def sync_templates(
    channel_id: str, actor: CurrentActor, db: Db, runtime: RuntimeDep
) -> Response:
    """Bring the organization's templates in line with the channel's WhatsApp Business Account:
    every template there, with its status, components and id."""
    check_administers(actor)
    channel = await db.read(lambda tx: channel_service.access_channel(tx, actor, channel_id))
    if channel.type is not ChannelType.WHATSAPP:
        raise ChannelMismatchError(f"Channel {channel_id} is not a WhatsApp channel")
    _, secrets = await _whatsapp_channel(runtime.provider_channels, channel_id, fresh=True)
    remote = await _list_account_templates(_graph(runtime), channel, secrets)
    result = await db.write(lambda tx: template_service.do_sync_templates(tx, actor, remote))
    return json_response(
        TemplateSync(
            created=[template_view(t) for t in result.created],
            updated=[template_view(t) for t in result.updated],
            unchanged=result.unchanged,
            skipped=result.skipped,
        )
    )


@router.post(
    "/v1/channels/{channel_id}/template-submissions",
    tags=["templates"],
    status_code=201,
    response_model=TemplateRead,
)
async def submit_template(
    channel_id: str,
    body: TemplateSubmission,
    actor: CurrentActor,
    db: Db,
    runtime: RuntimeDep,
) -> Response:
    """Submit a template to the channel's WhatsApp Business Account for Meta's review. It is
    PENDING until Meta's verdict arrives (`message_template_status_update`) or a sync."""
    check_administers(actor)

    def load(tx: Any) -> tuple[Channel, Any]:
        channel = channel_service.access_channel(tx, actor, channel_id)
        return channel, template_service.access_template(tx, actor, body.template_id)

    channel, template = await db.read(load)
    if channel.type is not ChannelType.WHATSAPP:
        raise ChannelMismatchError(f"Channel {channel_id} is not a WhatsApp channel")
    _, secrets = await _whatsapp_channel(runtime.provider_channels, channel_id, fresh=True)
    client = _graph(runtime)
    try:
        answer, _ = await client.call(
            "POST",
            str(channel.config["graph_api_version"]),
            f"{channel.config['waba_id']}/message_templates",
            str(secrets.get("access_token", "")),
            body={
                "name": template.name,
                "language": template.language,
                "category": template.category,
                "components": template.components,
            },
        )
    except GraphError as exc:
        raise _provider_error(exc) from exc
    finally:
        await client.aclose()
    status = _status(answer.get("status")) or TemplateStatus.PENDING
    submitted = await db.write(
        lambda tx: template_service.do_record_submission(
            tx, actor, template.id, external_id=str(answer.get("id", "")), status=status
        )
    )
    return json_response(template_view(submitted), 201)


def _status(value: Any) -> TemplateStatus | None:
    try:
        return TemplateStatus(str(value).upper())
    except ValueError:
        return None


async def _list_account_templates(
    client: GraphClient, channel: Channel, secrets: JsonObject
) -> list[template_service.RemoteTemplate]:
    token = str(secrets.get("access_token", ""))
    version = str(channel.config["graph_api_version"])
    path = f"{channel.config['waba_id']}/message_templates"
    remote: list[template_service.RemoteTemplate] = []
    next_url: str | None = None
    try:
        for _ in range(_MAX_TEMPLATE_PAGES):
            answer, _ = await client.call(
                "GET",
                version,
                path,
                token,
                params=None if next_url else {"limit": _TEMPLATE_PAGE},
                url=next_url,
            )
            for item in answer.get("data") or []:
                status = _status(item.get("status"))
                if not isinstance(item, dict) or status is None:
                    continue
                remote.append(
                    template_service.RemoteTemplate(
                        external_id=str(item.get("id", "")),
                        name=str(item.get("name", "")),
                        language=str(item.get("language", "")),
                        category=str(item.get("category", "")),
                        components=item.get("components"),
                        status=status,
                        reason=item.get("rejected_reason"),
                    )
                )
            paging = answer.get("paging")
            next_url = paging.get("next") if isinstance(paging, dict) else None
            if not next_url:
                break
    except GraphError as exc:
        raise _provider_error(exc) from exc
    finally:
        await client.aclose()
    return remote
