"""The outbox's fast path (a segment's .eml built once, filled per reader) writes the same
mail as the email package building every message: for each segment of the demo, the test
copy, and readers with awkward names and values, both parse to the same headers and parts
(apart from Date and Message-ID's random part), and the fast files keep the encoding rules.
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equip_mailer import synthetic
from equip_mailer.compose.audience import Recipient
from equip_mailer.compose.cell_values import clean
from equip_mailer.compose.render.personalisation import reader_values_builder, with_reader_urls
from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.render.tokens import READER_TOKEN
from equip_mailer.compose.spec import load_campaign
from equip_mailer.send.backends.mime_encoding import encoded_words, qp_value
from equip_mailer.send.backends.outbox import OutboxBackend
from equip_mailer.send.batch import Addressee, Batch, Content, display_name
from equip_mailer.send.campaign_mail import campaign_mail

PUBLIC = "https://equip.example.org"
SEND_ID = "0123456789abcdef0123456789abcdef"

# (first name, last name, practice): what a real list may hold and the fast path must get
# right, or leave to the email package.
AWKWARD = [
    ("Zoë", "Ó Briain", "Ünïcode Health Centre"),
    ("Siân", "Fernández-López", "Práctica"),
    ("李", "小龙", "診療所"),
    ("Ana 🌟", "Xu", "Star"),
    ("Mary-Jane", "O'Neill", "St. John's & Partners <Bow>"),
    ("J.", "Smith (Dr)", "Health = Care  Centre "),
    ('Dr "Jim"', "Back\\slash", "a@b.example"),
    ("=?utf-8?q?Eve?=", "Encoded", "=?utf-8?b?WA==?="),
    ("A" * 40, "B" * 60, "C" * 200),
    ("Ngũ Thị", "Ánh" * 20, "x"),
    ("Ω" * 30, "Ж" * 30, "Ǆ" * 120),
    ("", "", ""),
    ("Tab\there", "Line", "Surgery"),
    ("Ann", "Lee", "Two\nlines"),
]


@pytest.fixture(scope="module")
def demo_mail():
    from pathlib import Path

    spec = load_campaign(
        Path(__file__).resolve().parents[3] / "campaigns" / "2019-04-equip-training.yaml",
        allow_past=True,
    )
    return spec, campaign_mail(spec), render_campaign(spec, pages_url=PUBLIC)


def batch_for(rendered, segment: str, people: list[dict], test: bool = False) -> Batch:
    """The batch a send would hand the outbox (URLs written in around the reader token, as
    prepare_segment does)."""
    r = rendered[segment]
    subject, html, text = with_reader_urls(
        r, [f"{PUBLIC}/c/{READER_TOKEN}/{k}" for k in range(len(r.links))], f"{PUBLIC}/u/"
    )
    content = Content(segment=segment, subject=subject, html=html, text=text)
    build = reader_values_builder(r)
    readers = []
    for i, p in enumerate(people, 1):
        who = Recipient(
            p["email"], p["first_name"], p["last_name"], p["practice"], "GP", "none", f"t:{i}"
        )
        token = f"Reader{i}_-x"
        name = display_name(who.first_name, who.last_name)
        readers.append(Addressee(i, who.email, name, build(who, token), f"{PUBLIC}/u/{token}"))
    return Batch("2019-04-equip-training", SEND_ID, content, readers, test=test)


def people(n: int = 40) -> list[dict]:
    rows = synthetic.people(n, kind="staff", seed=5)
    rows += [
        {"email": f"awkward{i}@example.org", "first_name": f, "last_name": la, "practice": p}
        for i, (f, la, p) in enumerate(AWKWARD)
    ]
    return rows


def view(raw: bytes, ledger_id: int) -> dict:
    """What a mail client reads from a message: its headers (Date and Message-ID only
    checked for form), the MIME structure, each part's decoded text."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert email.utils.parsedate_to_datetime(msg["Date"]) is not None
    assert msg["Message-ID"].endswith(f".{SEND_ID}.{ledger_id}@example.org>")
    return {
        # Stripped: the email package folds a subject too long for the first line before
        # its first word ("Subject:\r\n Plenty of...") and reads that back with a leading
        # space, which mail clients drop.
        "headers": [
            (k, str(v).strip())
            for k, v in msg.items()
            if k not in ("Date", "Message-ID", "Content-Type")
        ],
        "type": (msg.get_content_type(), msg.get_param("charset")),
        "parts": [
            {
                "headers": [k for k in p.keys() if k != "Content-Transfer-Encoding"],
                "type": (p.get_content_type(), p.get_param("charset")),
                # The email package encodes a part in base64 when its first lines are
                # mostly non-ASCII, keeping bare LFs inside; a client reads CRLF = LF.
                "bytes": p.get_payload(decode=True).replace(b"\r\n", b"\n"),
                "text": p.get_content().replace("\r\n", "\n"),
            }
            for p in msg.iter_parts()
        ],
    }


def both(batch: Batch, mail) -> list[tuple[Addressee, bytes | None, bytes]]:
    fast = OutboxBackend("unused", mail)
    slow = OutboxBackend("unused", mail, builder="email")
    made = {a.ledger_id: data for a, data in fast.messages(batch)}
    return [(a, made[a.ledger_id], slow.message(batch, a)) for a in batch.addressees]


@pytest.mark.parametrize("test_copy", [False, True])
def test_every_demo_segment_reads_the_same_as_the_email_package_builds_it(demo_mail, test_copy):
    spec, mail, rendered = demo_mail
    for seg in rendered:
        batch = batch_for(rendered, seg, people(), test=test_copy)
        left_to_email = []
        for a, fast, slow in both(batch, mail):
            if fast is None:
                left_to_email.append(a.name)
                continue
            assert view(fast, a.ledger_id) == view(slow, a.ledger_id), (seg, a.name)
        # Only the readers the fast form does not cover: a name that reads as an encoded
        # word, one longer than one encoded word (the email package reads its own split
        # names back with extra spaces), a tab in a name, a line break in a value.
        assert left_to_email == [
            "=?utf-8?q?Eve?= Encoded",
            display_name("Ngũ Thị", "Ánh" * 20),
            display_name("Ω" * 30, "Ж" * 30),
            "Tab\there Line",
            "Ann Lee",
        ], (seg, left_to_email)


def test_plain_readers_get_the_email_packages_header_bytes(demo_mail):
    """Beyond reading the same: for plain ASCII names every header line and the MIME
    skeleton are byte for byte what the email package writes (Date, Message-ID and the
    boundary aside)."""
    spec, mail, rendered = demo_mail
    batch = batch_for(rendered, "getting-started", synthetic.people(20, kind="staff", seed=9))

    def skeleton(raw: bytes) -> bytes:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        boundary = msg.get_boundary().encode()
        raw = raw.replace(boundary, b"BOUNDARY")
        raw = re.sub(rb"(?m)^(Date|Message-ID): .*\r\n", rb"\1: x\r\n", raw)
        # Keep the headers and part headers; drop the encoded bodies.
        return b"".join(re.findall(rb"(?s)(.*?\r\n\r\n).*?(?=--BOUNDARY|\Z)", raw))

    plain = 0
    for a, fast, slow in both(batch, mail):
        if not a.name.isascii():
            continue
        plain += 1
        assert fast is not None
        assert skeleton(fast) == skeleton(slow)
    assert plain >= 10


def test_fast_files_keep_the_encoding_rules(demo_mail):
    spec, mail, rendered = demo_mail
    batch = batch_for(rendered, "project-leads", people())
    checked = 0
    for a, fast, _ in both(batch, mail):
        if fast is None:
            continue
        checked += 1
        assert fast.isascii()  # quoted-printable bodies, RFC 2047 headers
        head, _, body = fast.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            # folded at 78, except a single word that cannot be broken (the Message-ID)
            assert len(line) <= 78 or b" " not in line.partition(b": ")[2], line
            assert len(line) <= 998
        for line in body.split(b"\r\n"):
            assert len(line) <= 76, line  # RFC 2045 quoted-printable lines
        unfolded = body.replace(b"=\r\n", b"")
        assert b"-eq_" not in unfolded and b"-eqt_" not in unfolded  # every token filled
        # Each value went in whole: its encoded form is in the unfolded body unbroken.
        for token, value in a.values.items():
            if token in batch.content.html + batch.content.text:
                assert qp_value(value).replace("=\r\n", "").encode() in unfolded, token
    assert checked >= 40


def test_a_subject_with_tokens_is_filled_per_reader(demo_mail):
    spec, mail, rendered = demo_mail
    # (a practice with a line break cannot go in a subject: lists collapse them anyway)
    base = batch_for(
        rendered, "ready-for-action", [p for p in people() if "\n" not in p["practice"]]
    )
    for subject in (
        "-eqt_first_name-, your QI journey",
        "Plenty of courses for you and everyone at -eqt_practice-, -eqt_first_name-: sign up",
        "Für -eqt_first_name-: QI-Schulung",
    ):
        batch = Batch(
            base.campaign_id,
            SEND_ID,
            Content(base.content.segment, subject, base.content.html, base.content.text),
            base.addressees,
        )
        fast_count = 0
        for a, fast, slow in both(batch, mail):
            if fast is not None:
                fast_count += 1
                assert view(fast, a.ledger_id) == view(slow, a.ledger_id), (subject, a.name)
        assert fast_count >= 40


def test_send_batch_writes_what_the_email_package_would_for_everyone(tmp_path, demo_mail):
    """Through the backend: fast files and the ones it leaves to the email package."""
    spec, mail, rendered = demo_mail
    batch = batch_for(rendered, "getting-started", people(10))
    with OutboxBackend(tmp_path / "fast", mail) as fast_out:
        fast_out.send_batch(batch)
    with OutboxBackend(tmp_path / "email", mail, builder="email") as email_out:
        email_out.send_batch(batch)
    for a in batch.addressees:
        name = f"{a.ledger_id:06d}.eml"
        fast = (tmp_path / "fast" / mail.campaign_id / name).read_bytes()
        slow = (tmp_path / "email" / mail.campaign_id / name).read_bytes()
        assert view(fast, a.ledger_id) == view(slow, a.ledger_id)


def test_a_long_non_ascii_name_is_left_to_the_email_package():
    # One encoded word fits a short name; a longer one would need several.
    assert len(encoded_words("Zoë Ó Briain", 74)) == 1
    assert len(encoded_words("Ж" * 40, 74)) > 1


# Names as lists give them (no control characters, whitespace collapsed); practices anything.
_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x1F9FF), max_size=40
).map(clean)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=_names, last=_names, practice=st.text(max_size=120))
def test_any_name_and_practice_reads_the_same(demo_mail, first, last, practice):
    spec, mail, rendered = demo_mail
    p = {"email": "someone@example.org", "first_name": first, "last_name": last}
    batch = batch_for(rendered, "getting-started", [p | {"practice": practice}])
    [(a, fast, slow)] = both(batch, mail)
    if fast is not None:
        assert view(fast, a.ledger_id) == view(slow, a.ledger_id)
