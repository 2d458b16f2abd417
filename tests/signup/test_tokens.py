"""Sign-up links carry ids and a signature; anything altered, or of another kind, reads as None."""

from __future__ import annotations

from equip_mailer.send.links import click_token
from equip_mailer.signup import tokens

KEY = b"test-link-secret-0123456789"


def test_a_signup_token_names_a_course_and_a_reader():
    token = tokens.signup_token(KEY, 3, 41)
    assert tokens.read_signup_token(KEY, token) == (3, 41)
    assert tokens.read_signup_token(b"another secret", token) is None


def test_altered_and_other_kinds_of_token_are_refused():
    token = tokens.signup_token(KEY, 3, 41)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert tokens.read_signup_token(KEY, flipped) is None
    assert tokens.read_registration_token(KEY, tokens.invite_token(KEY, 5)) is None
    assert tokens.read_signup_token(KEY, click_token(KEY, 3, 41)) is None  # same ids, kind "c"
    assert tokens.read_invite_token(KEY, "../../etc/passwd") is None
    assert tokens.read_invite_token(KEY, "") is None


def test_registration_links_hold_no_address():
    url = tokens.registration_url("https://equip.example.org/", KEY, 12)
    assert url.startswith("https://equip.example.org/r/") and "@" not in url
    assert tokens.read_registration_token(KEY, url.rsplit("/", 1)[1]) == 12
