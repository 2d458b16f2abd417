"""The link secret: the key that signs every /c/ and /u/ token in mail already sent.

Everything that would silently break those links lives here: a secret too weak to resist
guessing from one token, the generated secret kept in the user's config folder, and the
fingerprint the store remembers so a sender or service holding a *different* secret is
caught before it answers 404 to every reader. The fingerprint and the /healthz challenge
answers are HMACs under keys derived from the secret, never the secret or a token signature.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
from pathlib import Path

from .errors import ConfigError

MIN_BITS = 256  # 32 bytes of entropy
MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
SECRET_FILE = "link-secret"
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+")


def estimated_bits(secret: str) -> float:
    """How many bits of entropy ``secret`` can hold at most, judged by its length and alphabet.

    Hex counts 4 bits a character, base64 6, anything else ~6.6 (printable ASCII); a string
    that repeats a few characters (``aaaa…``, ``passwordpassword…``) counts only what its
    distinct characters allow. An upper bound: it refuses the weak, it cannot prove strength.
    """
    text = secret.strip().rstrip("=")
    if not text:
        return 0.0
    if _HEX.fullmatch(text):
        alphabet = 16
    elif _BASE64.fullmatch(text):
        alphabet = 64
    else:
        alphabet = 95
    distinct = len(set(text))
    if distinct < 12:
        alphabet = min(alphabet, distinct)
    return len(text) * math.log2(max(alphabet, 1))


def check_strength(secret: str, where: str) -> None:
    """Refuse a secret under 32 bytes of entropy, saying how to make a good one."""
    bits = estimated_bits(secret)
    if bits < MIN_BITS:
        raise ConfigError(
            f"the link secret from {where} is too weak (about {bits:.0f} bits; at least "
            f"{MIN_BITS} are needed, or one token in one email could give it away)",
            hint=f"Make one with: {MAKE_ONE}  (43 characters). If mail was already sent with "
            "the weak one, its links stop working when you change it.",
        )


def stored_secret(directory: Path) -> tuple[str, Path]:
    """The generated secret in ``directory/link-secret``, made (mode 600) on first use."""
    secret_file = directory / SECRET_FILE
    if secret_file.exists():
        return secret_file.read_text(encoding="utf-8").strip(), secret_file
    directory.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    return secret, secret_file


def _derived(secret: bytes, purpose: bytes) -> bytes:
    # A key per purpose: no answer here can stand in for a token signature (those are
    # HMAC(secret, "c"/"u" + ids)), whatever a caller asks to have signed.
    return hmac.new(secret, b"equip-mailer/" + purpose, hashlib.sha256).digest()


def fingerprint(secret: bytes) -> str:
    """A stable public name for the secret (64 hex digits; shown shortened)."""
    return _derived(secret, b"fingerprint/v1").hex()


def short(fp: str) -> str:
    return fp[:12]


def challenge_answer(secret: bytes, nonce: str, *parts: str) -> str:
    """HMAC of a fresh nonce and ``parts`` under the secret's /healthz key: proves the
    service holds the same secret (and sees the same ``parts``) without showing either."""
    message = "\x00".join((nonce, *parts)).encode("utf-8")
    return hmac.new(_derived(secret, b"healthz/v1"), message, hashlib.sha256).hexdigest()


def healthz_proofs(
    secret: bytes, nonce: str, campaign_id: str, links_digest: str, webhook_ready: bool
) -> dict[str, str]:
    """The ``proof`` of a challenged /healthz answer: one answer for the secret alone, one
    with the campaign's links digest, one with the webhook's readiness, and one for the form
    of link it answers (``LINK_FORM``). The service sends them; the sender computes its own
    and compares."""
    return {
        "secret": challenge_answer(secret, nonce, "secret"),
        "links": challenge_answer(secret, nonce, "links", campaign_id, links_digest),
        "webhook": challenge_answer(secret, nonce, "webhook", "ready" if webhook_ready else "-"),
        "link_form": challenge_answer(secret, nonce, "link-form", LINK_FORM),
    }


# The form of the links a send puts in mail: one token per reader, /c/<token>/<link id> and
# /u/<token> (send/links.py). A service of an earlier version answers only the older
# /c/<token>, so a send checks the service knows this form before mailing links to it.
LINK_FORM = "reader-token"
