"""Who the team's sign-in mail comes from when EQUIP_MAIL_FROM is not set: an address at the
domain authenticated in SendGrid, else at the public URL's domain; with neither (the public
URL is an IP address or localhost), a service that mails through SendGrid refuses to start
with one sentence instead of mailing from an address SendGrid would refuse."""

from __future__ import annotations

import dataclasses

import pytest

from equip_mailer.errors import ConfigError
from equip_mailer.team.state import TeamState
from equip_mailer.track.app import create_app


def sender(settings, **changes) -> str:
    state = TeamState.from_settings(dataclasses.replace(settings, **changes))
    return f"{state.sender_name} <{state.sender_email}>"


def test_the_default_sender_is_at_the_authenticated_domain_else_the_public_urls(settings):
    assert sender(settings, mail_from="EQUIP <team@equip.example.org>") == (
        "EQUIP <team@equip.example.org>"
    )
    assert sender(settings, public_url="https://equip.example.org:8443/x") == (
        "EQUIP team pages <no-reply@equip.example.org>"
    )
    # Found in the audit: an IP address in EQUIP_PUBLIC_URL made the sender no-reply@ an
    # address no mail provider would take; the domain authenticated in SendGrid is the one
    for url in ("https://203.0.113.7", "https://[2001:db8::7]:8025", "http://localhost:8025"):
        assert sender(
            settings, public_url=url, sender_domain="equip.example.org", sendgrid_api_key="SG.x"
        ) == ("EQUIP team pages <no-reply@equip.example.org>")
    # no SendGrid: the sign-in mail goes to the outbox, where any address does
    assert sender(settings, public_url="http://127.0.0.1:8025") == (
        "EQUIP team pages <no-reply@localhost>"
    )


def test_no_domain_to_send_from_through_sendgrid_stops_the_service_at_start(settings):
    bare = dataclasses.replace(
        settings,
        public_url="https://203.0.113.7",
        sendgrid_api_key="SG.x",
        team=("ann@nhs.example",),
    )
    with pytest.raises(ConfigError) as caught:
        create_app(bare)
    said = str(caught.value) + " " + str(caught.value.hint)
    assert "sign-in" in said and "203.0.113.7" in said
    assert "EQUIP_MAIL_FROM" in said and "EQUIP_SENDER_DOMAIN" in said
    # without a team nobody is sent a sign-in link: nothing to refuse
    app = create_app(dataclasses.replace(bare, team=()))
    app.state.service.engine.dispose()
