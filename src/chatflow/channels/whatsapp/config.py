"""A WhatsApp channel's settings: the Cloud API phone number and account it speaks for.

The secrets (access token, app secret, verify token) are stored apart and never returned; the
config shows which of them are set.
"""

from __future__ import annotations

from chatflow.domain.errors import ValidationError
from chatflow.domain.models import JsonObject

SETTINGS = ("phone_number_id", "waba_id", "display_phone_number", "graph_api_version")
SECRETS = ("access_token", "app_secret", "verify_token")
REQUIRED = ("phone_number_id", "waba_id", "access_token", "app_secret", "verify_token")
DEFAULT_GRAPH_API_VERSION = "v21.0"


def configure(
    given: JsonObject, current_config: JsonObject, current_secrets: JsonObject
) -> tuple[JsonObject, JsonObject]:
    unknown = sorted(set(given) - set(SETTINGS) - set(SECRETS))
    if unknown:
        raise ValidationError(
            f"Unknown WhatsApp settings: {', '.join(unknown)}",
            errors=[
                {"pointer": f"/config/{name}", "message": "unknown setting"} for name in unknown
            ],
        )
    for name, value in given.items():
        if not isinstance(value, str):
            raise ValidationError(
                f"The WhatsApp setting {name} must be a string",
                errors=[{"pointer": f"/config/{name}", "message": "must be a string"}],
            )
    current = {k: v for k, v in current_config.items() if k != "secrets_set"}
    config = {**current, **{k: v for k, v in given.items() if k in SETTINGS}}
    config.setdefault("graph_api_version", DEFAULT_GRAPH_API_VERSION)
    secrets = {**current_secrets, **{k: v for k, v in given.items() if k in SECRETS}}
    missing = [name for name in REQUIRED if not {**config, **secrets}.get(name)]
    if missing:
        raise ValidationError(
            f"A WhatsApp channel needs {', '.join(missing)}",
            errors=[{"pointer": f"/config/{name}", "message": "required"} for name in missing],
        )
    # Which secrets are set is useful to show; their values never leave the server.
    config["secrets_set"] = sorted(k for k in SECRETS if secrets.get(k))
    return config, secrets
