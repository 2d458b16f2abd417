"""One segment's ``.eml`` rendered once down to the bytes; per reader only the varying parts.

The ``email`` package builds, folds and encodes a whole message per reader (~2.8 ms each,
and its header objects are cyclic garbage). Here it builds ONE message per segment, whose
fixed headers and MIME skeleton are kept as they came out, and whose two parts are
quoted-printable encoded once with every token left as a slot. Per reader the message is a
join: their To, Date, Message-ID, List-Unsubscribe and recipient id header lines (and the
subject, when it holds tokens), and each token's value encoded for quoted-printable
(``mime_encoding.qp_value``) dropped into its slot.

The encoding rules hold by construction: a token is never in the encoded text, so no soft
break can split one; each slot starts on a fresh line when the value would push its line
past 76 characters; values are encoded for the part's transfer encoding; header lines fold
at 78 and never pass 998; non-ASCII names and subjects become RFC 2047 encoded words.
``fill`` answers None for a reader it does not cover (an address needing quotes, a value
with a line break, ...): the backend builds that one with the ``email`` package, which
tests/send/backends/test_outbox_template.py holds this module to, part by part.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage

from equip_mailer.send.batch import LIST_UNSUBSCRIBE_POST, Addressee
from equip_mailer.send.campaign_mail import CampaignMail

from .mime_encoding import (
    MAX_LINE,
    QP_LINE,
    SOFT_BREAK,
    address_header,
    qp_text,
    qp_value,
    unstructured_header,
)

# Stand-ins in the one message the email package builds; none can occur in real output
# (the parts are replaced whole, the header lines dropped).
_SENTINEL = "eq-sentinel"
_TEXT_MARK = "@@EQUIP-TEXT-PART@@"
_HTML_MARK = "@@EQUIP-HTML-PART@@"
# The header lines that differ per reader, by name as the email package writes them.
_PER_READER = ("To", "Date", "Message-ID", "List-Unsubscribe", "X-Equip-Recipient")
_SAFE_HEADER_VALUE = re.compile(r"[\x21-\x7e]+").fullmatch


@dataclass(frozen=True)
class _Slot:
    """Where a token's value goes in an encoded part. ``room``: the most characters the
    value may take and still share the line with the text around it; a longer value goes
    on lines of its own, between ``before`` and ``after`` (soft breaks where needed)."""

    token: str
    room: int
    before: str
    after: str


def _normal_lines(text: str) -> str:
    """Line breaks as the ``email`` package makes them before encoding: ``\\r\\n``, ``\\r``
    and ``\\n`` all become ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _encoded_part(text: str, pattern: re.Pattern[str] | None) -> tuple[list[str], list[_Slot]]:
    """The part quoted-printable encoded between its tokens: pieces and slots, alternating
    (``pieces[0] slot pieces[1] ... pieces[-1]``)."""
    split = pattern.split(text) if pattern is not None else [text]
    raw = [_normal_lines(p) for p in split[0::2]]
    # The email package ends a part with exactly one line break.
    if not raw[-1].endswith("\n"):
        raw[-1] += "\n"
    # A piece before a slot does not end a line: encoded with a stand-in character after
    # it (then dropped), a space it ends with stays a space instead of "=20".
    pieces = [qp_text(p + "x")[:-1] for p in raw[:-1]] + [qp_text(raw[-1])]
    for i in range(1, len(pieces) - 1):
        if "\r\n" not in pieces[i]:
            # Text between two values on one line: it starts a line of its own, so each
            # value's room is known here rather than per reader.
            pieces[i] = SOFT_BREAK + pieces[i]
    slots = []
    for i, token in enumerate(split[1::2]):
        left, right = pieces[i], pieces[i + 1]
        left_col = len(left) - left.rfind("\r\n") - 2 if "\r\n" in left else len(left)
        right_len = right.index("\r\n") if "\r\n" in right else len(right)
        slots.append(
            _Slot(
                token,
                room=QP_LINE - 1 - left_col - right_len,
                before=SOFT_BREAK if left_col else "",
                after=SOFT_BREAK if right_len else "",
            )
        )
    return pieces, slots


# A value that goes in as it is: printable ASCII but "=", no trailing space, not empty, on
# one line (checked over all of a reader's values joined by NULs in one search).
_NOT_AS_IS = re.compile(r"[^\x00\x20-\x3c\x3e-\x7e]| \x00|\x00\x00|^\x00").search


class SegmentTemplate:
    """The ``.eml`` of one segment (one ``Content``, test copy or not), ready to fill:
    literal text and fields alternating, the fields being the per-reader header lines then
    the slots."""

    def __init__(
        self,
        mail: CampaignMail,
        segment: str,
        subject: str,
        text: str,
        html: str,
        tokens: list[str],
    ):
        pattern = (
            re.compile(
                "(" + "|".join(re.escape(k) for k in sorted(tokens, key=len, reverse=True)) + ")"
            )
            if tokens
            else None
        )
        self.domain = mail.sender_email.rpartition("@")[2]
        subject_parts = pattern.split(subject) if pattern is not None else [subject]
        # A subject without tokens is a fixed header line like any other.
        self.subject_parts: tuple[str, ...] | None = (
            tuple(subject_parts) if len(subject_parts) > 1 else None
        )
        msg = EmailMessage()
        msg["Subject"] = _SENTINEL if self.subject_parts else subject
        msg["From"] = Address(mail.sender_name or "", addr_spec=mail.sender_email)
        msg["To"] = Address("", addr_spec=f"{_SENTINEL}@example.invalid")
        if mail.reply_to_email:
            msg["Reply-To"] = Address(mail.reply_to_name or "", addr_spec=mail.reply_to_email)
        msg["Date"] = "Thu, 01 Jan 2026 00:00:00 +0000"
        msg["Message-ID"] = f"<{_SENTINEL}@example.invalid>"
        msg["List-Unsubscribe"] = f"<https://{_SENTINEL}.invalid/>"
        msg["List-Unsubscribe-Post"] = LIST_UNSUBSCRIBE_POST
        for name, value in mail.list_headers(segment).items():
            msg[name] = value
        msg["X-Equip-Campaign"] = mail.campaign_id
        msg["X-Equip-Segment"] = segment
        msg["X-Equip-Recipient"] = "0"
        msg.set_content(_TEXT_MARK + "\n", subtype="plain", charset="utf-8", cte="quoted-printable")
        msg.add_alternative(
            _HTML_MARK + "\n", subtype="html", charset="utf-8", cte="quoted-printable"
        )
        # Raises UnicodeEncodeError / ValueError for what needs SMTPUTF8 (a non-ASCII
        # sender address): the caller then leaves this segment to the email package.
        raw = msg.as_bytes(policy=email.policy.SMTP).decode("ascii")
        head, _, body = raw.partition("\r\n\r\n")
        # The fixed header lines and MIME skeleton byte for byte as the email package wrote
        # them; a field per reader's header line, in the order written.
        literal = [""]  # literal[i] goes before field i; one more after the last
        self.headers: list[str] = []
        for field in re.split(r"\r\n(?![ \t])", head):
            name = field.partition(":")[0]
            if name in _PER_READER or (name == "Subject" and self.subject_parts):
                self.headers.append(name)
                literal.append("")
            else:
                literal[-1] += field + "\r\n"
        literal[-1] += "\r\n"
        text_at = body.index(_TEXT_MARK + "\r\n")
        html_at = body.index(_HTML_MARK + "\r\n")
        skeleton = (
            body[:text_at],
            body[text_at + len(_TEXT_MARK) + 2 : html_at],
            body[html_at + len(_HTML_MARK) + 2 :],
        )
        self.slots: list[_Slot] = []
        for frame, part in ((skeleton[0], text), (skeleton[1], html)):
            literal[-1] += frame
            pieces, slots = _encoded_part(part, pattern)
            for i, slot in enumerate(slots):
                literal[-1] += pieces[i]
                literal.append("")
                self.slots.append(slot)
            literal[-1] += pieces[-1]
        literal[-1] += skeleton[2]
        self.literal = [chunk.encode("ascii") for chunk in literal]
        self.joined: list[bytes | None] = [None] * (2 * len(literal) - 1)

    def fill(self, a: Addressee, date_line: str, msgid: str) -> bytes | None:
        """This reader's message, or None when the fast form does not cover them."""
        values = a.values
        if (
            _NOT_AS_IS("\x00".join(values.values()) + "\x00")
            or max(map(len, values.values()), default=0) >= QP_LINE
        ):
            encoded = {}
            for k, v in values.items():
                if not v or "\r" in v or "\n" in v:
                    return None  # the email package would break lines there
                encoded[k] = qp_value(v)
            values = encoded
        lines: dict[str, str | None] = {
            "To": address_header("To", a.name or "", a.email),
            "Date": date_line,
            "Message-ID": f"Message-ID: {msgid}\r\n",
            "List-Unsubscribe": (
                f"List-Unsubscribe: <{a.unsubscribe_url}>\r\n"
                if _SAFE_HEADER_VALUE(a.unsubscribe_url) and len(a.unsubscribe_url) < MAX_LINE - 20
                else None
            ),
            "X-Equip-Recipient": f"X-Equip-Recipient: {a.ledger_id}\r\n",
        }
        if self.subject_parts:
            parts = list(self.subject_parts)
            for i in range(1, len(parts), 2):
                parts[i] = a.values.get(parts[i], parts[i])
            lines["Subject"] = unstructured_header("Subject", "".join(parts))
        fields = [lines[name] for name in self.headers]
        if None in fields:
            return None
        get = values.get
        for slot in self.slots:
            v = get(slot.token, slot.token)
            fields.append(v if len(v) <= slot.room else slot.before + v + slot.after)
        joined = self.joined.copy()
        joined[0::2] = self.literal
        joined[1::2] = [f.encode("ascii") for f in fields]  # type: ignore[union-attr]
        return b"".join(joined)  # type: ignore[arg-type]
