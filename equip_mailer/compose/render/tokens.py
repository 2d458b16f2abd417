"""Tokens: the space-free stand-ins left wherever one reader's email differs from another's.

A segment is rendered once; its first name, practice, every tracked link and the unsubscribe
link are written as tokens such as ``-eq_link_0-`` (HTML part) or ``-eqt_link_0-`` (text
part), which survive MJML and premailer untouched. SendGrid applies one substitution dict to
both parts, so the two parts' tokens have different names: only HTML values get escaped.
"""

from __future__ import annotations

import re

TOKEN_RE = re.compile(r"(-eqt?_[a-z0-9_]+-)")
PLACEHOLDERS = ("first_name", "practice")

# Fallbacks so a blank cell in a list never produces "Dear ,".
BLANK_VALUES = {"first_name": "colleague", "practice": "your practice"}


def html_token(name: str) -> str:
    return f"-eq_{name}-"


def text_token(name: str) -> str:
    return f"-eqt_{name}-"


def link_token_name(index: int) -> str:
    return f"link_{index}"


# In a send, the one token of a reader's tracked and unsubscribe URLs (``send.links``): the
# URLs are written into the segment's content once with this token inside them, in both
# parts under its HTML name, since its value (base64url characters) never needs escaping.
READER_TOKEN = html_token("reader")
