"""Link tokens cannot be altered into anything that verifies (issue 7, item 5).

Property tests with hypothesis: every bit flip, truncation, extension or character change
of a valid token fails to verify; so does a token read as another kind or with another
secret. That holds for the reader token of today's mail (``/c/<reader>/<link>``,
``/u/<reader>``) and for the older click and unsubscribe tokens, still read for mail sent
before. Together with the registry lookup (tests/track/test_clicks.py), an altered link can
only ever lead to the 404 page or to another link of the reader's own mail.
"""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from equip_mailer.send.links import (
    SIG_BYTES,
    TEST_RECIPIENT,
    Token,
    click_token,
    click_url,
    click_url_maker,
    read_click,
    read_reader_token,
    read_token,
    read_unsubscribe,
    reader_token,
    reader_token_maker,
    unsubscribe_token,
    unsubscribe_url,
)
from equip_mailer.signup.tokens import (
    read_invite_token,
    read_registration_token,
    read_signup_token,
    registration_token,
)

SECRET = b"test-link-secret-0123456789"
ids = st.integers(min_value=0, max_value=2**40)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TRIED = {"flips": 0, "truncations": 0, "edits": 0}


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@given(link_id=ids, ledger_id=ids)
def test_tokens_round_trip_and_are_compact(link_id, ledger_id):
    token = click_token(SECRET, link_id, ledger_id)
    assert read_token(SECRET, "c", token) == Token("c", link_id, ledger_id)
    assert len(token) <= 32 and "@" not in token
    assert read_token(SECRET, "u", unsubscribe_token(SECRET, ledger_id)) == Token("u", 0, ledger_id)


@settings(max_examples=400)
@given(link_id=ids, ledger_id=ids, data=st.data())
def test_any_bit_flip_never_verifies(link_id, ledger_id, data):
    token = click_token(SECRET, link_id, ledger_id)
    body = bytearray(raw(token))
    bits = data.draw(st.sets(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=4))
    for bit in bits:
        body[bit // 8] ^= 1 << (bit % 8)
    TRIED["flips"] += 1
    assert read_token(SECRET, "c", encode(bytes(body))) is None


@settings(max_examples=300)
@given(link_id=ids, ledger_id=ids, data=st.data())
def test_truncations_and_extensions_never_verify(link_id, ledger_id, data):
    token = click_token(SECRET, link_id, ledger_id)
    cut = data.draw(st.integers(0, len(token) - 1))
    TRIED["truncations"] += 1
    assert read_token(SECRET, "c", token[:cut]) is None
    assert read_token(SECRET, "c", token[len(token) - cut :] if cut else "") is None
    extra = data.draw(st.text(ALPHABET, min_size=1, max_size=8))
    assert read_token(SECRET, "c", token + extra) is None


@settings(max_examples=400)
@given(link_id=ids, ledger_id=ids, data=st.data())
def test_any_character_change_never_verifies(link_id, ledger_id, data):
    """Also the spare low bits of the last base64 character: a non-canonical spelling of a
    valid token is refused, so each (link, recipient) has exactly one token."""
    token = click_token(SECRET, link_id, ledger_id)
    pos = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != token[pos]))
    TRIED["edits"] += 1
    assert read_token(SECRET, "c", token[:pos] + char + token[pos + 1 :]) is None


def test_every_single_character_change_of_one_token_is_refused():
    token = click_token(SECRET, 7, 1234)
    changed = [
        token[:i] + c + token[i + 1 :] for i in range(len(token)) for c in ALPHABET if c != token[i]
    ]
    assert all(read_token(SECRET, "c", t) is None for t in changed)
    print(
        f"one token: {len(changed)} single-character changes, 0 verify; hypothesis tried "
        f"{TRIED['flips']} bit-flip, {TRIED['truncations']} truncation, {TRIED['edits']} edit cases"
    )


@given(link_id=ids, ledger_id=ids)
def test_wrong_kind_or_secret_never_verifies(link_id, ledger_id):
    click = click_token(SECRET, link_id, ledger_id)
    unsub = unsubscribe_token(SECRET, ledger_id)
    assert read_token(SECRET, "u", click) is None
    assert read_token(SECRET, "c", unsub) is None
    assert read_token(b"another secret", "c", click) is None


@given(st.text(max_size=80))
def test_random_text_never_verifies(text):
    assert read_token(SECRET, "c", text) is None
    assert read_token(SECRET, "u", text) is None


@given(ledger_id=ids)
def test_reader_tokens_round_trip_and_are_compact(ledger_id):
    token = reader_token(SECRET, ledger_id)
    assert read_reader_token(SECRET, token) == ledger_id
    assert reader_token_maker(SECRET)(ledger_id) == token
    assert len(token) <= 24 and "@" not in token


@settings(max_examples=300)
@given(ledger_id=ids, data=st.data())
def test_any_change_to_a_reader_token_never_verifies(ledger_id, data):
    token = reader_token(SECRET, ledger_id)
    body = bytearray(raw(token))
    for bit in data.draw(st.sets(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=4)):
        body[bit // 8] ^= 1 << (bit % 8)
    assert read_reader_token(SECRET, encode(bytes(body))) is None
    pos = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != token[pos]))
    assert read_reader_token(SECRET, token[:pos] + char + token[pos + 1 :]) is None
    cut = data.draw(st.integers(0, len(token) - 1))
    assert read_reader_token(SECRET, token[:cut]) is None
    assert read_reader_token(SECRET, token + data.draw(st.text(ALPHABET, min_size=1))) is None


@given(n=ids)
def test_a_reader_token_is_no_other_kind_of_token_and_none_is_a_reader_token(n):
    # A reader token for ledger row n must not open registration n (cancel it) or anything
    # else signed with the same secret, nor may they pass as a reader token.
    token = reader_token(SECRET, n)
    assert read_registration_token(SECRET, token) is None
    assert read_invite_token(SECRET, token) is None
    assert read_signup_token(SECRET, token) is None
    assert read_token(SECRET, "c", token) is None and read_token(SECRET, "u", token) is None
    for other in (
        registration_token(SECRET, n),
        unsubscribe_token(SECRET, n),
        click_token(SECRET, n, n),
    ):
        assert read_reader_token(SECRET, other) is None
    assert read_reader_token(b"another secret", token) is None


def test_a_click_is_a_reader_token_and_a_link_id_or_an_older_click_token():
    token = reader_token(SECRET, 41)
    assert read_click(SECRET, token, "3") == Token("c", 3, 41)
    assert read_click(SECRET, click_token(SECRET, 3, 41)) == Token("c", 3, 41)
    # The link id in its one spelling: digits, no sign, no leading zero, not too long.
    for link in ("03", "+3", "-3", "3.0", " 3", "", "३", "1" * 19, "abc"):
        assert read_click(SECRET, token, link) is None, link
    assert read_click(SECRET, token, "0") == Token("c", 0, 41)  # then no registry row: 404
    assert read_click(SECRET, click_token(SECRET, 3, 41), "3") is None  # old token, new form
    assert read_click(SECRET, token) is None  # a reader token alone names no link


def test_unsubscribe_reads_a_reader_token_or_an_older_unsubscribe_token():
    assert read_unsubscribe(SECRET, reader_token(SECRET, 41)) == Token("u", 0, 41)
    assert read_unsubscribe(SECRET, unsubscribe_token(SECRET, 41)) == Token("u", 0, 41)
    assert read_unsubscribe(SECRET, click_token(SECRET, 3, 41)) is None


def test_urls_carry_no_address_and_test_recipient_is_zero():
    url = click_url("https://equip.example.org/", SECRET, 3, 41)
    token = reader_token(SECRET, 41)
    assert url == f"https://equip.example.org/c/{token}/3" and "@" not in url
    assert unsubscribe_url("https://equip.example.org", SECRET, 41) == (
        f"https://equip.example.org/u/{token}"
    )
    assert TEST_RECIPIENT == 0 and SIG_BYTES >= 12


def test_click_url_maker_gives_the_same_urls_as_click_url():
    secret = b"k" * 32
    ids = {"a": 1, "b": 130, "c": 99999}
    assert click_url_maker("https://t.example", b"x" * 100, ids)(5)["c"] == click_url(
        "https://t.example", b"x" * 100, 99999, 5
    )  # keys longer than a block
    make = click_url_maker("https://t.example/", secret, ids)
    for ledger_id in (0, 1, 127, 128, 10**6):
        urls = make(ledger_id)
        assert urls == {
            k: click_url("https://t.example", secret, v, ledger_id) for k, v in ids.items()
        }
        token, link = urls["b"].split("/")[-2:]
        assert read_click(secret, token, link) == Token("c", 130, ledger_id)


def test_reader_token_maker_gives_the_tokens_of_the_unsubscribe_url():
    for secret in (b"k" * 32, b"long" * 40):
        make = reader_token_maker(secret)
        for ledger_id in (0, 1, 300, 10**7):
            url = unsubscribe_url("https://t.example", secret, ledger_id)
            assert "https://t.example/u/" + make(ledger_id) == url


def test_ids_take_the_fewest_bytes_at_every_length_boundary():
    # _varint's one- to three-byte shortcuts, and the loop past them, agree on the format.
    from equip_mailer.send.links import _read_varint, _varint

    for n, length in (
        (0, 1),
        (127, 1),
        (128, 2),
        (16383, 2),
        (16384, 3),
        (2**21 - 1, 3),
        (2**21, 4),
        (2**40, 6),
    ):
        encoded = _varint(n)
        assert len(encoded) == length and _read_varint(encoded, 0) == (n, length), n
        assert all(b & 0x80 for b in encoded[:-1]) and not encoded[-1] & 0x80
