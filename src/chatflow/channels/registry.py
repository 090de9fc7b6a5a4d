"""Every channel kind chatflow has. Adding a channel is a folder here and a line below (and its
name in `ChannelType`)."""

from __future__ import annotations

from collections.abc import Mapping

from chatflow.channels import sandbox, webchat, whatsapp
from chatflow.channels.base import ChannelKind
from chatflow.domain.models import ChannelType
from chatflow.services.channels import ChannelRules

KINDS: Mapping[ChannelType, ChannelKind] = {
    kind.type: kind for kind in (whatsapp.KIND, webchat.KIND, sandbox.KIND)
}


def rules_of(channel_type: ChannelType) -> ChannelRules:
    return KINDS[channel_type].rules
