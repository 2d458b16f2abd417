"""The encoding rules a ready-made ``.eml`` must keep, for the parts the outbox fills in per
reader: quoted-printable values dropped into an already encoded body, and header lines for
names and subjects (RFC 2047 encoded words for non-ASCII, folding at 78 characters).

Python's ``email`` package applies these rules to a whole message at a time, which is where
the outbox used to spend ~90 % of a send; here each rule is applied to one value, and
anything these fast forms do not cover (a control character, an address that needs
quoting, a word too long to fold) answers ``None``, so the caller builds that reader's
message with the ``email`` package instead. Everything produced is ASCII.
"""

from __future__ import annotations

import re
from email import quoprimime

QP_LINE = 76  # RFC 2045: encoded lines of at most 76 characters, the soft break's "=" included
HEADER_LINE = 78  # RFC 5322: SHOULD fold at 78
MAX_LINE = 998  # RFC 5322: MUST NOT exceed
SOFT_BREAK = "=\r\n"

# Characters that may stand for themselves in a quoted-printable body: printable ASCII
# except "=", and the space (a value never ends a line with one: see qp_value).
_QP_UNSAFE = re.compile(r"[^\x20-\x3c\x3e-\x7e]").search
_QP_BYTE = [chr(b) if 0x20 <= b <= 0x7E and b != 0x3D else f"={b:02X}" for b in range(256)]


def qp_value(value: str) -> str:
    """``value`` (UTF-8) quoted-printable encoded to drop into an encoded body: lines of at
    most 75 characters joined by soft breaks, so the caller can end any line with one more,
    and no trailing space or tab (encoded), whatever follows it in the body."""
    if len(value) < QP_LINE and not _QP_UNSAFE(value) and value[-1:] != " ":
        return value
    chars = [_QP_BYTE[b] for b in value.encode("utf-8")]
    if chars and chars[-1] in (" ", "\t"):
        chars[-1] = f"={ord(chars[-1]):02X}"
    lines: list[str] = []
    line: list[str] = []
    width = 0
    for c in chars:
        if width + len(c) > QP_LINE - 1:
            lines.append("".join(line))
            line, width = [], 0
        line.append(c)
        width += len(c)
    lines.append("".join(line))
    return SOFT_BREAK.join(lines)


def qp_text(text: str) -> str:
    """A stretch of body text (its line breaks already ``\\n``) quoted-printable encoded,
    every line at most 75 characters (``quoprimime``, as the ``email`` package encodes)."""
    return quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), QP_LINE - 1, "\r\n")


# RFC 2047 5(3): in a phrase (a display name), only these stand for themselves in "Q" words.
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTE = [chr(b) if b in _Q_LITERAL else "_" if b == 0x20 else f"={b:02X}" for b in range(256)]
_EW_OPEN, _EW_CLOSE = "=?utf-8?q?", "?="
MAX_ENCODED_WORD = 75


def encoded_words(text: str, first_room: int) -> list[str]:
    """``text`` as RFC 2047 "Q" encoded words (whole characters in each, each at most 75
    characters; the first at most ``first_room``), for a phrase or an unstructured header.
    Adjacent encoded words decode as one run of text: spaces go inside them as ``_``."""
    words: list[str] = []
    current: list[str] = []
    width = 0
    room = min(first_room, MAX_ENCODED_WORD) - len(_EW_OPEN) - len(_EW_CLOSE)
    for ch in text:
        enc = "".join(_Q_BYTE[b] for b in ch.encode("utf-8"))
        if current and width + len(enc) > room:
            words.append(_EW_OPEN + "".join(current) + _EW_CLOSE)
            current, width = [], 0
            room = MAX_ENCODED_WORD - len(_EW_OPEN) - len(_EW_CLOSE)
        current.append(enc)
        width += len(enc)
    if current or not words:
        words.append(_EW_OPEN + "".join(current) + _EW_CLOSE)
    return words


def fold(name: str, words: list[str]) -> str | None:
    """``Name: w1 w2 ...`` folded before a word wherever the line would pass 78 characters
    (unfolding gives back single spaces between words); None if a line would pass 998."""
    lines: list[str] = []
    line = name + ":"
    for w in words:
        if len(line) + 1 + len(w) > HEADER_LINE and line != name + ":":
            lines.append(line)
            line = ""
        line += " " + w
        if len(line) > MAX_LINE:
            return None
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


# RFC 5322 atext, and what a dot-atom address (no quoting, no comments, ASCII) looks like.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_PLAIN_PHRASE = re.compile(rf"[{_ATEXT}]+(?: [{_ATEXT}]+)*").fullmatch
_PLAIN_ADDRESS = re.compile(
    rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
).fullmatch
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*").fullmatch


def address_header(name: str, display: str, addr: str) -> str | None:
    """``To: display <addr>`` as the ``email`` package would parse it back, or None when
    the address is not a plain ASCII dot-atom (let the ``email`` package quote it) or the
    name holds something that reads as an encoded word (``=?``)."""
    if not _PLAIN_ADDRESS(addr) or "=?" in display:
        return None
    if not display:
        return fold(name, [addr])
    if _PLAIN_PHRASE(display):
        if len(name) + len(display) + len(addr) + 5 <= HEADER_LINE:
            return f"{name}: {display} <{addr}>\r\n"  # what fold gives when nothing folds
        words = display.split(" ")
    elif display.isascii():
        if not _PRINTABLE_ASCII(display) or display != display.strip():
            return None
        words = ['"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"']
    else:
        if not display.isprintable():
            return None
        words = encoded_words(display, HEADER_LINE - len(name) - 2)
        if len(words) > 1:
            # The email package itself reads a name split over encoded words back with
            # spaces where they join: leave such (long) names to it.
            return None
    return fold(name, [*words, f"<{addr}>"])


def unstructured_header(name: str, value: str) -> str | None:
    """``Subject: value`` folded, non-ASCII as encoded words; None for what the ``email``
    package should handle (control characters, runs of spaces, text that looks like an
    encoded word)."""
    if "=?" in value:
        return None
    if value.isascii():
        if not _PRINTABLE_ASCII(value) or "  " in value or value != value.strip() or not value:
            return None
        return fold(name, value.split(" "))
    if not value.isprintable():
        return None
    words = encoded_words(value, HEADER_LINE - len(name) - 2)
    return fold(name, words) if len(words) == 1 else None
