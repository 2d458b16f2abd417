"""Before a real send, the live service at the public URL is asked (through /healthz) whether
it holds this send's link secret and knows this campaign's links; a real service on
loopback plays the public one."""

from __future__ import annotations

import socket

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.link_secrets import LINK_SECRET, OTHER_LINK_SECRET
from support.service import running_app
from support.tracking_data import SendGridKey, load_signer, seed_campaign

from equip_mailer import store
from equip_mailer.config import Settings
from equip_mailer.link_secret import challenge_answer
from equip_mailer.send.service_check import ServiceCheckError, confirm_service
from equip_mailer.store import identity
from equip_mailer.track.app import create_app

SECRET = LINK_SECRET.encode()


@pytest.fixture
def sender_store(tmp_path):
    """The sender's store, with a campaign whose links are registered."""
    engine = store.open_store(f"sqlite:///{tmp_path / 'sender.db'}")
    campaign = seed_campaign(engine, SECRET)
    with engine.connect() as conn:
        digest = identity.links_digest(conn, campaign.id)
    yield campaign, digest, engine
    engine.dispose()


def service(engine, secret: str = LINK_SECRET, **settings):
    return running_app(create_app(Settings(link_secret=secret, **settings), engine))


def test_the_service_that_reads_the_senders_store_with_its_secret_passes(sender_store):
    campaign, digest, engine = sender_store
    with service(engine) as url:
        confirm_service(url, SECRET, campaign.id, digest)


def test_a_service_with_another_secret_is_refused(tmp_path, sender_store):
    campaign, digest, _ = sender_store
    other = store.open_store(f"sqlite:///{tmp_path / 'service.db'}")
    with service(other, OTHER_LINK_SECRET) as url:
        with pytest.raises(ServiceCheckError, match="uses a different link secret"):
            confirm_service(url, SECRET, campaign.id, digest)
    other.dispose()


def test_a_service_reading_another_store_is_refused(tmp_path, sender_store):
    """Same secret, but the service was started on a fresh, empty store: every link a 404."""
    campaign, digest, _ = sender_store
    empty = store.open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    with service(empty) as url:
        with pytest.raises(ServiceCheckError, match="does not know campaign .*'s links"):
            confirm_service(url, SECRET, campaign.id, digest)
    empty.dispose()


def test_a_campaign_relying_on_webhook_events_needs_the_services_webhook_key(sender_store):
    campaign, digest, engine = sender_store
    with service(engine) as url:
        with pytest.raises(ServiceCheckError, match="no SENDGRID_WEBHOOK_PUBLIC_KEY"):
            confirm_service(url, SECRET, campaign.id, digest, needs_webhook=True)
    key = SendGridKey(load_signer())
    with service(engine, sendgrid_webhook_public_key=key.public) as url:
        confirm_service(url, SECRET, campaign.id, digest, needs_webhook=True)


def test_nothing_listening_or_something_else_listening_is_refused(sender_store):
    campaign, digest, _ = sender_store
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceCheckError, match="cannot reach the tracking service"):
        confirm_service(f"http://127.0.0.1:{port}", SECRET, campaign.id, digest, timeout=2)
    with running_app(Starlette()) as url:  # a web server, but not ours: 404 everywhere
        with pytest.raises(ServiceCheckError, match="HTTP 404 without the link check's proof"):
            confirm_service(url, SECRET, campaign.id, digest)


def test_a_service_of_an_earlier_version_is_refused(sender_store):
    """Same secret, same store, but a service that answers only the older one-token links
    (/c/<token>): the links this version mails (/c/<reader token>/<link>) would all 404."""
    campaign, digest, engine = sender_store

    async def healthz(request):  # what an earlier service answers: no link_form proof
        nonce = request.query_params["challenge"]
        with engine.connect() as conn:
            links = identity.links_digest(conn, request.query_params["campaign"])
        proof = {
            "secret": challenge_answer(SECRET, nonce, "secret"),
            "links": challenge_answer(SECRET, nonce, "links", campaign.id, links),
            "webhook": challenge_answer(SECRET, nonce, "webhook", "-"),
        }
        return JSONResponse({"status": "ok", "db": "ok", "proof": proof})

    earlier = Starlette(routes=[Route("/healthz", healthz)])
    with running_app(earlier) as url:
        with pytest.raises(ServiceCheckError, match="runs an earlier equip-mailer") as refused:
            confirm_service(url, SECRET, campaign.id, digest)
    assert "Update equip-mailer where the service runs" in refused.value.hint
    with service(engine) as url:  # today's service, the same store: passes
        confirm_service(url, SECRET, campaign.id, digest)
