"""Tracked links: signed, compact tokens that name a recipient, never an address.

Mail carries one token per reader, the *reader token*: the reader's row in the ledger plus
a truncated HMAC-SHA256. Every tracked link of their mail is ``/c/<reader token>/<link id>``
and their unsubscribe link ``/u/<reader token>``: one signature per reader, however many
links the course menu has, and one substitution value per reader in a SendGrid request
instead of one per link (a third of the request, and of the send's work, went on them).

The link id is not signed: it names a row of the registry, and the service answers only a
link of the reader's own campaign; the redirect target is looked up there, never read from
the URL. So an altered id leads to another link of the same mail (which the reader could
click anyway) or to a 404, and a forged token to a 404. Since the ledger id is a number,
no address ever appears in a URL.

Mail sent before reader tokens carries ``/c/<click token>`` (link and reader signed
together) and ``/u/<unsubscribe token>``; ``read_token`` still reads those, and the service
still answers them.

Ledger id 0 marks a test send or a preview: the link redirects but nothing is recorded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.compose.render.mail_links import LinkSpec
from equip_mailer.store import links

SIG_BYTES = 12  # 96 bits: forging one token takes ~2^95 tries
TEST_RECIPIENT = 0
# The reader token's letter. Every kind of signed token has its own (click and unsubscribe
# tokens "c" and "u", sign-up pages "s", invites "i", registrations "r"), so that a token
# of one kind never passes as another: a reader token must never read as a registration.
READER = "m"
MAX_LINK_ID_DIGITS = 18


@dataclass(frozen=True)
class Token:
    kind: str  # "c" click, "u" unsubscribe (the reader token's and the older tokens')
    link_id: int  # 0 for unsubscribe tokens
    ledger_id: int


def _varint(n: int) -> bytes:
    # Ledger and link ids are mostly under 2**21: one to three bytes without the loop
    # (a send makes one per reader).
    if 0 <= n < 0x80:
        return bytes((n,))
    if 0 <= n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    if 0 <= n < 0x200000:
        return bytes((n & 0x7F | 0x80, n >> 7 & 0x7F | 0x80, n >> 14))
    if n < 0:
        raise ValueError("ids are never negative")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or len(text) > 64 or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError("not a token")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, kind: str, payload: bytes) -> bytes:
    return hmac.new(secret, kind.encode("ascii") + payload, hashlib.sha256).digest()[:SIG_BYTES]


def click_token(secret: bytes, link_id: int, ledger_id: int) -> str:
    """The older click token, link and reader signed together (``/c/<token>``): mail sent
    before reader tokens carries it, so the service still reads it."""
    payload = _varint(link_id) + _varint(ledger_id)
    return _b64(payload + _sign(secret, "c", payload))


def unsubscribe_token(secret: bytes, ledger_id: int) -> str:
    """The older unsubscribe token (``/u/<token>``), still read: see ``click_token``."""
    payload = _varint(ledger_id)
    return _b64(payload + _sign(secret, "u", payload))


def read_token(secret: bytes, kind: str, token: str) -> Token | None:
    """The ids in a token, or None if it is malformed or its signature does not match."""
    try:
        raw = _unb64(token)
    except (ValueError, binascii.Error):
        return None
    if _b64(raw) != token:  # non-canonical spelling (spare low bits in the last character)
        return None
    if len(raw) <= SIG_BYTES:
        return None
    payload, sig = raw[:-SIG_BYTES], raw[-SIG_BYTES:]
    if not hmac.compare_digest(sig, _sign(secret, kind, payload)):
        return None
    try:
        if kind == "c":
            link_id, pos = _read_varint(payload, 0)
            ledger_id, pos = _read_varint(payload, pos)
        else:
            link_id, (ledger_id, pos) = 0, _read_varint(payload, 0)
    except ValueError:
        return None
    if pos != len(payload):
        return None
    return Token(kind=kind, link_id=link_id, ledger_id=ledger_id)


def ids_token(secret: bytes, kind: str, *ids: int) -> str:
    """A signed token carrying ``ids`` for another kind of link (sign-up pages, invites,
    registrations: ``signup.tokens``). ``kind`` separates the uses: a token of one kind
    never reads as another."""
    payload = b"".join(_varint(i) for i in ids)
    return _b64(payload + _sign(secret, kind, payload))


def read_ids_token(secret: bytes, kind: str, token: str, count: int) -> tuple[int, ...] | None:
    """The ``count`` ids in a token of ``kind``, or None if it is malformed or forged."""
    try:
        raw = _unb64(token)
    except (ValueError, binascii.Error):
        return None
    if _b64(raw) != token or len(raw) <= SIG_BYTES:
        return None
    payload, sig = raw[:-SIG_BYTES], raw[-SIG_BYTES:]
    if not hmac.compare_digest(sig, _sign(secret, kind, payload)):
        return None
    ids, pos = [], 0
    try:
        for _ in range(count):
            value, pos = _read_varint(payload, pos)
            ids.append(value)
    except ValueError:
        return None
    return tuple(ids) if pos == len(payload) else None


def reader_token(secret: bytes, ledger_id: int) -> str:
    """The one token of a reader's mail, in all of its tracked links and its unsubscribe."""
    return ids_token(secret, READER, ledger_id)


def read_reader_token(secret: bytes, token: str) -> int | None:
    """The ledger id in a reader token, or None if it is malformed or forged."""
    ids = read_ids_token(secret, READER, token, 1)
    return ids[0] if ids is not None else None


def read_click(secret: bytes, token: str, link: str | None = None) -> Token | None:
    """The click a URL names: ``/c/<reader token>/<link>`` (``link`` given: the link id
    as the path spells it, digits only) or an older ``/c/<click token>``; None for
    anything else."""
    if link is None:
        return read_token(secret, "c", token)
    if not (link.isdigit() and link.isascii()) or len(link) > MAX_LINK_ID_DIGITS:
        return None
    if link != str(int(link)):  # one spelling per link ("017" is not link 17)
        return None
    ledger_id = read_reader_token(secret, token)
    return None if ledger_id is None else Token("c", int(link), ledger_id)


def read_unsubscribe(secret: bytes, token: str) -> Token | None:
    """The reader a ``/u/`` token names: a reader token, or an older unsubscribe token."""
    ledger_id = read_reader_token(secret, token)
    if ledger_id is not None:
        return Token("u", 0, ledger_id)
    return read_token(secret, "u", token)


# The two forms of a reader's URLs, spelled here only (the service's routes mirror them):
# ``token`` is a reader token, or the segment's READER_TOKEN placeholder (send/prepare.py).
CLICK_PATH = "/c/{token}/{link_id}"
UNSUBSCRIBE_PREFIX = "/u/"


def click_path(secret: bytes, link_id: int, ledger_id: int) -> str:
    """``/c/<reader token>/<link id>``: where a reader's click on a link goes."""
    return CLICK_PATH.format(token=reader_token(secret, ledger_id), link_id=link_id)


def click_url(public_url: str, secret: bytes, link_id: int, ledger_id: int) -> str:
    return public_url.rstrip("/") + click_path(secret, link_id, ledger_id)


def unsubscribe_url(public_url: str, secret: bytes, ledger_id: int) -> str:
    return public_url.rstrip("/") + UNSUBSCRIBE_PREFIX + reader_token(secret, ledger_id)


def register_links(conn: Connection, campaign_id: str, specs: list[LinkSpec]) -> dict[str, int]:
    """Make sure each link has a registry row; return key -> link id.

    A changed URL is updated in place, so a sign-up page fixed after mail went out is
    where earlier clicks now land too.
    """
    existing = {
        r.key: r
        for r in conn.execute(
            sa.select(links.c.id, links.c.key, links.c.url).where(
                links.c.campaign_id == campaign_id
            )
        )
    }
    ids: dict[str, int] = {}
    for spec in specs:
        row = existing.get(spec.key)
        if row is None:
            pk = conn.execute(
                links.insert().values(
                    campaign_id=campaign_id,
                    key=spec.key,
                    url=spec.url,
                    course_id=spec.course_id,
                    session=spec.session,
                    label=spec.label,
                )
            ).inserted_primary_key
            assert pk is not None  # a one-row INSERT always has its key
            ids[spec.key] = pk[0]
        else:
            if row.url != spec.url:
                conn.execute(
                    links.update()
                    .where(links.c.id == row.id)
                    .values(
                        url=spec.url,
                        label=spec.label,
                        course_id=spec.course_id,
                        session=spec.session,
                    )
                )
            ids[spec.key] = row.id
    return ids


def _keyed_sha256(secret: bytes, prefix: bytes):
    """HMAC-SHA256 (RFC 2104) with the key and a message prefix already absorbed, as two plain
    hashlib states: copying these per token avoids the ``hmac`` module's Python layers."""
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(prefix)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def reader_token_maker(secret: bytes) -> Callable[[int], str]:
    """``ledger_id -> reader token``, the same as ``reader_token``, for the send loop: the
    keyed hash state is prepared once and copied per reader (100,000 readers a send)."""
    inner, outer = _keyed_sha256(secret, READER.encode("ascii"))
    b2a = binascii.b2a_base64
    urlsafe = _URLSAFE

    def token(ledger_id: int) -> str:
        v = _varint(ledger_id)
        i = inner.copy()
        i.update(v)
        o = outer.copy()
        o.update(i.digest())
        return (
            b2a(v + o.digest()[:SIG_BYTES], newline=False)
            .translate(urlsafe)
            .rstrip(b"=")
            .decode("ascii")
        )

    return token


def click_url_maker(
    public_url: str, secret: bytes, link_ids: dict[str, int]
) -> Callable[[int], dict[str, str]]:
    """``ledger_id -> {link key: click URL}``, the same URLs as ``click_url``: one signature
    per reader, whatever the number of links."""
    base = public_url.rstrip("/")
    token = reader_token_maker(secret)

    def urls(ledger_id: int) -> dict[str, str]:
        tok = token(ledger_id)
        return {k: base + CLICK_PATH.format(token=tok, link_id=i) for k, i in link_ids.items()}

    return urls
