"""Whether a post to the SendGrid webhook is SendGrid's, fresh, and shaped like events.

SendGrid signs ``timestamp + raw body`` with ECDSA P-256/SHA-256 and sends the base64 DER
signature in ``X-Twilio-Email-Event-Webhook-Signature``; a post outside the replay window
is refused, so a captured post cannot be replayed later. Only then is the body parsed: it
must be a JSON array of objects. Each refusal is an exception whose ``status`` is the HTTP
answer (all 4xx, which SendGrid does not retry). No web framework here, so a test or a
replay tool can check a post with plain function calls.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from equip_mailer.errors import ConfigError, EquipError

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
REPLAY_WINDOW = 600  # seconds either side of our clock
MAX_BODY = 5 * 1024 * 1024  # bytes; SendGrid batches are far smaller

SendGridEvent = dict[str, Any]  # one event as SendGrid posts it: a JSON object, any fields


class WebhookError(EquipError):
    """A post we refuse; ``status`` is the HTTP answer the route gives."""

    status = 400


class MalformedPayload(WebhookError, ValueError):
    """The body is not a JSON array of event objects: 400, SendGrid should not retry it."""

    status = 400


class BadSignature(WebhookError, PermissionError):
    """Missing, malformed or wrong signature, or no key configured: 403, never stored."""

    status = 403


class StaleTimestamp(BadSignature):
    """Signed, but outside the replay window: 403, so a captured post cannot be replayed."""

    status = 403


class TooLarge(WebhookError, ValueError):
    """Body over the size limit: 413."""

    status = 413


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key, as its dashboard shows it (base64 DER) or as PEM."""
    text = (text or "").strip()
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(
                base64.b64decode("".join(text.split()), validate=True)
            )
    except (ValueError, binascii.Error, UnicodeEncodeError, TypeError):
        raise ConfigError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key",
            hint="Copy the 'Verification Key' from SendGrid's Event Webhook "
            "settings (Mail Settings > Event Webhook > Signature verification).",
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA P-256 key",
            hint="SendGrid's signed event webhook uses ECDSA P-256; copy its verification key.",
        )
    return key


def verify_signature(
    key: ec.EllipticCurvePublicKey | None,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    window: float = REPLAY_WINDOW,
) -> None:
    """Raise BadSignature / StaleTimestamp unless SendGrid signed ``timestamp + body`` recently."""
    if key is None:
        raise BadSignature(
            "no webhook verification key is configured",
            hint="Set SENDGRID_WEBHOOK_PUBLIC_KEY to SendGrid's verification key.",
        )
    if not signature or not timestamp:
        raise BadSignature(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    timestamp = timestamp.strip()
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise BadSignature("the signature timestamp is not unix seconds")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise BadSignature("the signature does not match the body") from None
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > window:
        raise StaleTimestamp(
            f"the signature timestamp is {int(now - int(timestamp))} s away "
            f"from now (allowed: {window:g} s)"
        )


def parse_events(body: bytes) -> list[SendGridEvent]:
    """The posted events, or MalformedPayload."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(f"the body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, list):
        raise MalformedPayload("the body is not a JSON array of events")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise MalformedPayload(f"event {i} is not a JSON object")
    return data
