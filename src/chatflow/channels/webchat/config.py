"""A web-chat channel's settings: its public key (in the page's URL), and how the page looks.

- `key`: made by chatflow when the channel is created, `wc_` and 22 url-safe random characters.
  It is public (it is in every embed snippet) and cannot be changed or chosen by the caller.
- `title`, `welcome_text`: shown on the page (the title defaults to the channel's name).
- `allowed_origins`: the sites that may embed the page (`https://shop.example`,
  `https://*.shop.example`), sent as `Content-Security-Policy: frame-ancestors`; empty: any site.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from chatflow.domain.errors import ValidationError
from chatflow.domain.models import JsonObject

KEY_PREFIX = "wc_"
KEY_PATTERN = re.compile(r"^wc_[A-Za-z0-9_-]{22}$")
SETTINGS = ("title", "welcome_text", "allowed_origins")
MAX_TITLE = 100
MAX_WELCOME_TEXT = 1000
MAX_ORIGINS = 50
# Scheme and host (a leading `*.` allowed, as CSP allows it), an optional port, nothing else:
# what passes here is written into a response header as it is.
ORIGIN_PATTERN = re.compile(
    r"^https?://(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    r"(:[0-9]{1,5})?$"
)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(16)  # 16 bytes: 22 characters


def _problem(name: str, message: str, detail: str) -> ValidationError:
    return ValidationError(detail, errors=[{"pointer": f"/config/{name}", "message": message}])


def _text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise _problem(name, "must be a string", f"The web-chat setting {name} must be a string")
    if len(value) > limit:
        raise _problem(
            name, f"at most {limit} characters", f"{name} is longer than {limit} characters"
        )
    return value.strip()


def _origins(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _problem(
            "allowed_origins", "must be a list", "allowed_origins must be a list of origins"
        )
    if len(value) > MAX_ORIGINS:
        raise _problem(
            "allowed_origins",
            f"at most {MAX_ORIGINS} origins",
            f"allowed_origins takes at most {MAX_ORIGINS} origins",
        )
    origins: list[str] = []
    for position, origin in enumerate(value):
        normalised = origin.strip().lower().rstrip("/") if isinstance(origin, str) else None
        if normalised is None or not ORIGIN_PATTERN.match(normalised):
            raise ValidationError(
                "allowed_origins holds origins such as https://shop.example (scheme and host, "
                "an optional port, no path)",
                errors=[
                    {"pointer": f"/config/allowed_origins/{position}", "message": "not an origin"}
                ],
            )
        if normalised not in origins:
            origins.append(normalised)
    return origins


def configure(
    given: JsonObject, current_config: JsonObject, current_secrets: JsonObject
) -> tuple[JsonObject, JsonObject]:
    if "key" in given:
        raise _problem(
            "key",
            "set by chatflow",
            "The web-chat key is made by chatflow when the channel is created and cannot be set",
        )
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise ValidationError(
            f"Unknown web-chat settings: {', '.join(unknown)}",
            errors=[
                {"pointer": f"/config/{name}", "message": "unknown setting"} for name in unknown
            ],
        )
    config: JsonObject = {
        "key": current_config.get("key") or new_key(),
        "title": current_config.get("title", ""),
        "welcome_text": current_config.get("welcome_text", ""),
        "allowed_origins": list(current_config.get("allowed_origins", [])),
    }
    if "title" in given:
        config["title"] = _text("title", given["title"], MAX_TITLE)
    if "welcome_text" in given:
        config["welcome_text"] = _text("welcome_text", given["welcome_text"], MAX_WELCOME_TEXT)
    if "allowed_origins" in given:
        config["allowed_origins"] = _origins(given["allowed_origins"])
    return config, current_secrets
