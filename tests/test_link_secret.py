"""The link secret: weak ones refused with how to make a good one; the generated one kept
private and stable; its fingerprint names it without giving it away."""

from __future__ import annotations

import base64
import os
import secrets

import pytest

from equip_mailer import link_secret
from equip_mailer.config import Settings
from equip_mailer.errors import ConfigError


@pytest.mark.parametrize(
    "weak",
    [
        "a",
        "test-link-secret-0123456789",  # what the tests used to use
        "correct-horse-battery",
        "a" * 64,
        "password" * 8,  # long, but eight letters over and over
        "0123456789abcdef" * 2,  # 32 hex characters are 16 bytes
    ],
)
def test_a_weak_secret_is_refused_saying_how_to_make_one(weak):
    with pytest.raises(ConfigError) as caught:
        Settings(link_secret=weak).require_link_secret()
    assert "is too weak" in str(caught.value)
    assert "secrets.token_urlsafe(32)" in caught.value.hint


def test_secrets_made_the_usual_ways_are_accepted():
    for _ in range(300):  # whatever characters chance gives them
        for made in (
            secrets.token_urlsafe(32),
            secrets.token_hex(32),
            base64.b64encode(os.urandom(32)).decode(),  # openssl rand -base64 32
        ):
            assert link_secret.estimated_bits(made) >= link_secret.MIN_BITS, made


def test_the_generated_secret_is_private_and_stable(tmp_path):
    first, path = link_secret.stored_secret(tmp_path / "cfg")
    again, _ = link_secret.stored_secret(tmp_path / "cfg")
    assert first == again and path == tmp_path / "cfg" / "link-secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert link_secret.estimated_bits(first) >= link_secret.MIN_BITS


def test_the_fingerprint_names_a_secret_without_showing_it():
    one, other = secrets.token_urlsafe(32).encode(), secrets.token_urlsafe(32).encode()
    fp = link_secret.fingerprint(one)
    assert fp == link_secret.fingerprint(one) != link_secret.fingerprint(other)
    assert one.decode() not in fp and len(fp) == 64
