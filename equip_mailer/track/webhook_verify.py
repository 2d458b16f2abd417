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
from dataclasses import dataclass, field
from typing import Any

import orjson
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


@dataclass(frozen=True)
class Batch:
    """A post's events that can be stored, and why the others cannot (``event 3: ...``)."""

    events: list[SendGridEvent]
    refused: list[str] = field(default_factory=list)


def parse_events(body: bytes) -> Batch:
    """The posted events; MalformedPayload when the body is not a JSON array at all.

    One bad event (nested past what the parser takes, a lone surrogate such as ``\\ud800``
    that no database column can hold, not an object) is refused on its own: the good
    events of the same post are still stored, and the route answers 400 naming the bad.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("the body is not JSON (not UTF-8)") from None
    try:
        data: Any = json.loads(text)
    except RecursionError:
        data = None  # nested too deeply somewhere: read the array one element at a time
    except ValueError as exc:
        raise MalformedPayload(f"the body is not JSON ({exc.__class__.__name__})") from None
    if data is None and text.strip() != "null":
        elements = [_element(chunk) for chunk in _array_elements(text)]
    elif isinstance(data, list):
        elements = data
    else:
        raise MalformedPayload("the body is not a JSON array of events")
    events: list[SendGridEvent] = []
    refused: list[str] = []
    for i, item in enumerate(elements):
        problem = _event_problem(item)
        if problem:
            refused.append(f"event {i}: {problem}")
        else:
            events.append(item)
    return Batch(events, refused)


_TOO_DEEP, _NOT_JSON = object(), object()


def _element(chunk: str) -> Any:
    try:
        return json.loads(chunk)
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return _NOT_JSON


def _event_problem(item: Any) -> str | None:
    if item is _TOO_DEEP:
        return "is nested too deeply to read"
    if item is _NOT_JSON:
        return "is not valid JSON"
    if not isinstance(item, dict):
        return "is not a JSON object"
    try:
        # every string must be storable text (also what normalise keeps as the raw event):
        # what orjson writes is (it refuses lone surrogates); for the rest, the slow check
        orjson.dumps(item)
        return None
    except orjson.JSONEncodeError:
        pass
    try:
        json.dumps(item, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (\\ud800-\\udfff), which is not text"
    except (RecursionError, ValueError):
        return "is nested too deeply to read"
    return None


def _array_elements(text: str) -> list[str]:
    """The top-level elements of a JSON array as text, found without recursion (strings,
    escapes and bracket depth tracked in one pass), so one element nested too deeply for
    the parser does not make its neighbours unreadable."""
    start = _skip_space(text, 0)
    if start >= len(text) or text[start] != "[":
        raise MalformedPayload("the body is not a JSON array of events")
    elements: list[str] = []
    depth, in_string, escaped, begin = 0, False, False, start + 1
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                last = text[begin:i].strip()
                if last:
                    elements.append(last)
                if text[i + 1 :].strip():
                    raise MalformedPayload("the body is not JSON (text after the array)")
                return elements
        elif ch == "," and depth == 1:
            elements.append(text[begin:i].strip())
            begin = i + 1
    raise MalformedPayload("the body is not JSON (the array is not closed)")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i
