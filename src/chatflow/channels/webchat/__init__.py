"""Web chat: a customer page at `/chat/{key}`, embeddable on a business's site, live over a
WebSocket. It has no 24-hour window; what agents send is delivered as it commits."""

from chatflow.channels.base import ChannelKind
from chatflow.channels.webchat.config import configure
from chatflow.channels.webchat.routes import router
from chatflow.domain.models import ChannelType
from chatflow.services.channels import ChannelRules, Window

KIND = ChannelKind(
    type=ChannelType.WEBCHAT,
    rules=ChannelRules(window=Window.OFF_BY_DEFAULT, configure=configure),
    routes=router.routes,
)
