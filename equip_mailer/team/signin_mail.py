"""The sign-in mail: a single-use link, sent as a notice so it leaves exactly once through
whichever backend the service uses (the outbox by default, so sign-in works offline).

The notice's key is derived from the link's hash, so a retried request never mails the same
link twice; the link itself is the only secret and appears nowhere but in the message.
"""

from __future__ import annotations

import html

from equip_mailer.send.notices import Notice

from .signin_links import LIFETIME
from .state import TeamState

SUBJECT = "Your sign-in link for the EQUIP team pages"


def sign_in_notice(state: TeamState, to_email: str, token: str, token_hash: str) -> Notice:
    link = f"{state.public_url}/team/sign-in/{token}"
    minutes = int(LIFETIME.total_seconds() // 60)
    text = (
        "Hello,\n\n"
        f"Someone asked to sign in to the EQUIP team pages ({state.public_url}/team/) "
        "with this address. To sign in, open this link and press the button:\n\n"
        f"{link}\n\n"
        f"The link works once, for the next {minutes} minutes, and only for this address.\n\n"
        "If you did not ask for it, ignore this email: nobody can sign in without the link.\n"
    )
    body = (
        '<!doctype html><html lang="en-GB"><head><meta charset="utf-8">'
        f"<title>{html.escape(SUBJECT)}</title></head>"
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:16px;color:#212B32">'
        "<p>Hello,</p>"
        "<p>Someone asked to sign in to the EQUIP team pages with this address. "
        "To sign in, open this link and press the button:</p>"
        f'<p><a href="{html.escape(link)}" style="color:#005EB8;font-weight:bold">'
        "Sign in to the EQUIP team pages</a></p>"
        f"<p>The link works once, for the next {minutes} minutes, and only for this address."
        "</p><p>If you did not ask for it, ignore this email: nobody can sign in without "
        "the link.</p></body></html>"
    )
    return Notice(
        key=f"team-sign-in:{token_hash[:40]}",
        kind="team-sign-in",
        to_email=to_email,
        subject=SUBJECT,
        text=text,
        html=body,
        from_email=state.sender_email,
        from_name=state.sender_name,
    )
