"""WhatsApp Cloud API: Meta's signed webhook in (`routes.py`, applied by `process.py`), Graph API
sends out (`graph.py`)."""

from chatflow.channels.base import ChannelContext, ChannelKind
from chatflow.channels.whatsapp.config import configure
from chatflow.channels.whatsapp.graph import GraphClient, WhatsAppTransport
from chatflow.channels.whatsapp.process import apply_notification
from chatflow.channels.whatsapp.routes import router
from chatflow.domain.models import ChannelType
from chatflow.services.channels import ChannelRules, Window


def _transport(context: ChannelContext) -> WhatsAppTransport:
    settings = context.settings
    return WhatsAppTransport(
        GraphClient(
            settings.whatsapp_graph_base_url, timeout_seconds=settings.whatsapp_timeout_seconds
        )
    )


KIND = ChannelKind(
    type=ChannelType.WHATSAPP,
    rules=ChannelRules(window=Window.ALWAYS, configure=configure),
    routes=router.routes,
    transport=_transport,
    apply_notification=apply_notification,
)
