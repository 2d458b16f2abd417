"""Checking a post without a server: SendGrid's key in either form it is shown in, a
signature that verifies, and keys that are not P-256 public keys refused in plain words.
"""

from __future__ import annotations

import pytest
from support.tracking_data import SendGridKey, load_signer

from equip_mailer.track import webhook_verify as webhook


@pytest.fixture(scope="module")
def sg_key():
    return SendGridKey(load_signer())


def test_public_key_in_pem_and_bad_keys(sg_key):
    import base64
    import textwrap

    pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        + "\n".join(textwrap.wrap(sg_key.public, 64))
        + "\n-----END PUBLIC KEY-----\n"
    )
    key = webhook.load_public_key(pem)
    body = b'[{"event":"delivered"}]'
    h = sg_key.headers(body)
    webhook.verify_signature(key, body, h[webhook.SIGNATURE_HEADER], h[webhook.TIMESTAMP_HEADER])
    from equip_mailer.errors import ConfigError

    with pytest.raises(ConfigError, match="not a public key"):
        webhook.load_public_key("not a key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="P-256"):
        webhook.load_public_key(base64.b64encode(p384).decode())
