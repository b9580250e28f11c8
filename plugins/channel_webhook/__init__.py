"""channel_webhook: signed inbound channel orders and outbound webhooks (built in issue #6).

Discovered through its entry point; it implements no hook yet.
"""
