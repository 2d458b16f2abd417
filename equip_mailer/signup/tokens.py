"""The signed links of the sign-up pages, each naming rows by id and nothing else.

- ``/s/<token>``: a list reader's sign-up page, bound to (course row, ledger row); the click
  on the email's tracked link redirects there. The course row belongs to one campaign and
  the page checks the ledger row belongs to it too, so a token made for another campaign,
  or one whose ids were changed, is a 404.
- ``/i/<token>``: the link mailed to an address given on the open sign-up page (the
  invite row holds the address, so no address is ever in a URL).
- ``/r/<token>``: a registration: see it, get its calendar, cancel it.

Every kind is signed with the link secret under its own letter, so a token of one kind
never passes as another (``send.links.ids_token``).
"""

from __future__ import annotations

from equip_mailer.send.links import ids_token, read_ids_token

SIGNUP, INVITE, REGISTRATION = "s", "i", "r"


def signup_token(secret: bytes, course_row: int, ledger_id: int) -> str:
    return ids_token(secret, SIGNUP, course_row, ledger_id)


def read_signup_token(secret: bytes, token: str) -> tuple[int, int] | None:
    """(course row, ledger id), or None for anything we did not sign."""
    ids = read_ids_token(secret, SIGNUP, token, 2)
    return (ids[0], ids[1]) if ids else None


def invite_token(secret: bytes, invite_id: int) -> str:
    return ids_token(secret, INVITE, invite_id)


def read_invite_token(secret: bytes, token: str) -> int | None:
    ids = read_ids_token(secret, INVITE, token, 1)
    return ids[0] if ids else None


def registration_token(secret: bytes, registration_id: int) -> str:
    return ids_token(secret, REGISTRATION, registration_id)


def read_registration_token(secret: bytes, token: str) -> int | None:
    ids = read_ids_token(secret, REGISTRATION, token, 1)
    return ids[0] if ids else None


def registration_url(public_url: str, secret: bytes, registration_id: int) -> str:
    """Where a person sees, adds to their calendar or cancels their place."""
    return f"{public_url.rstrip('/')}/r/{registration_token(secret, registration_id)}"


def open_signup_path(campaign_id: str, course_id: str) -> str:
    """The open sign-up page: shareable, readable, and not secret (it only asks for an
    address and mails a link to it)."""
    return f"/join/{campaign_id}/{course_id}"
