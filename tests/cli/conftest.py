"""Fixtures the send, status and cancel tests share: the demo project to send from, and the
fake SendGrid server that the real client talks to when SENDGRID_API_KEY is set."""

from __future__ import annotations

import pytest
from support.fake_sendgrid import start_server
from support.send_project import KEY


@pytest.fixture
def project(demo_project):
    return demo_project


@pytest.fixture
def sendgrid(monkeypatch):
    url, server = start_server(KEY, keep_bodies=True)
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", url)
    monkeypatch.setenv("EQUIP_SENDGRID_TIMEOUT", "5")
    monkeypatch.setenv("EQUIP_SENDER_DOMAIN", "example.org")  # the demo sends from it
    yield server
    server.stop()
