"""What the tracking service keeps out of its store and its logs: readers' IPs and addresses.

An IP is stored only as a keyed, truncated hash (enough for a report to tell two clickers
apart), and database errors are logged with anything that looks like an address masked,
because a driver's message can quote the row it failed on. Every route uses these, so no
route has its own idea of what is safe to keep.
"""

from __future__ import annotations

import hmac
import re

from starlette.requests import Request

from equip_mailer.config import mask_email

_EMAIL = re.compile(r"[^\s'\"<>()\[\],;:]+@[^\s'\"<>()\[\],;:]+")


def ip_hash(key: bytes, ip: str | None) -> str | None:
    """A keyed, truncated hash of an IP address: lets a report tell two clickers apart,
    but the address itself is never stored and can't be recovered by hashing all 2^32."""
    if not ip:
        return None
    return hmac.digest(key + b"|ip", ip.encode("utf-8"), "sha256").hex()[:16]  # one C call


def client_ip(request: Request) -> str | None:
    """The peer's IP as uvicorn reports it (``serve`` trusts a local proxy's X-Forwarded-For)."""
    return request.client.host if request.client else None


def scrub(text: str) -> str:
    """Mask anything that looks like an address before it reaches a log line."""
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def db_error(exc: BaseException) -> str:
    """A database error in one log-safe line: its type and the first line of its message."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).splitlines() or [""])[0][:300]
    return scrub(f"{type(orig).__name__}: {first}")
