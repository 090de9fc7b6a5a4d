"""Channels: how customers reach chatflow (WhatsApp, web chat, the sandbox), one folder each.

A channel kind is a `ChannelKind` (see `base.py`), listed in `registry.py`. Every kind hands
what its customers send to the one inbound path (`services.inbound.receive`, where R3, R4, R6 and
R8 are applied once) and gets what agents and automation send from the one outbox: the message
rows and their events, and for kinds whose provider must be called, `outbound_sends` rows that
`outbound.OutboundSender` works through after commit.

Channels sit on top of the API layer: a kind brings its own customer-facing routes (Meta's
webhook, the web-chat page) and may use everything below.
"""
