"""The sandbox: a customer simulated through the API, for demos, tests and flow test runs.

It emulates WhatsApp's 24-hour window by default; what agents send is delivered as it commits.
"""

from chatflow.channels.base import ChannelKind
from chatflow.channels.sandbox.routes import router
from chatflow.domain.models import ChannelType
from chatflow.services.channels import ChannelRules, Window

KIND = ChannelKind(
    type=ChannelType.SANDBOX,
    rules=ChannelRules(window=Window.ON_BY_DEFAULT),
    routes=router.routes,
)
