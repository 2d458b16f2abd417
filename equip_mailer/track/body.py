"""Reading a request body with a cap: the routes that take a body (the webhook, one-click
unsubscribe) must not let a client make us buffer without limit, whatever its
Content-Length says (it may be absent or lie).
"""

from __future__ import annotations

from starlette.requests import Request

from .webhook_verify import TooLarge

DRAIN_LIMIT = 64 * 1024 * 1024  # read (and drop) at most this much of an oversize body


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read from the stream with a cap.

    Raises ``TooLarge`` past ``limit``; the rest is drained (up to DRAIN_LIMIT) and
    dropped so that the client reads our 413 instead of a reset connection.
    """
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if too_large or size > limit:
            too_large = True
            chunks.clear()
            if size > DRAIN_LIMIT:
                break
            continue
        chunks.append(chunk)
    if too_large:
        raise TooLarge(f"the body is over {limit} bytes")
    return b"".join(chunks)
