"""/healthz: a bare "ok" for anyone; proofs only a holder of the link secret can check."""

from __future__ import annotations

import secrets

from equip_mailer import link_secret
from equip_mailer.store import identity


def test_the_public_answer_says_only_that_the_service_and_its_store_answer(service):
    _, client = service
    response = client.get("/healthz")
    assert response.status_code == 200
    # No schema version, no word on the webhook key: nothing that helps an attacker.
    assert response.json() == {"status": "ok", "db": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_a_challenge_is_answered_with_proofs_under_the_services_secret(
    service, engine, campaign, settings
):
    _, client = service
    nonce = secrets.token_urlsafe(24)
    answer = client.get("/healthz", params={"challenge": nonce, "campaign": campaign.id})
    assert answer.status_code == 200
    with engine.connect() as conn:
        digest = identity.links_digest(conn, campaign.id)
    assert digest  # the seeded campaign has links
    secret = settings.require_link_secret()
    expected = link_secret.healthz_proofs(secret, nonce, campaign.id, digest, False)
    assert answer.json()["proof"] == expected
    # Another secret, or a store without these links, gives other proofs.
    other = link_secret.healthz_proofs(b"x" * 43, nonce, campaign.id, digest, False)
    assert other["secret"] != answer.json()["proof"]["secret"]
    unknown = client.get("/healthz", params={"challenge": nonce, "campaign": "never-sent"})
    assert unknown.json()["proof"]["secret"] == expected["secret"]
    assert unknown.json()["proof"]["links"] != expected["links"]


def test_a_malformed_challenge_is_refused(service):
    _, client = service
    for params in (
        {"challenge": "short"},
        {"challenge": "x" * 200},
        {"challenge": "a" * 32, "campaign": "bad/id"},
        {"challenge": "a" * 32},  # a campaign is part of the question
    ):
        response = client.get("/healthz", params=params)
        assert response.status_code == 400, params
        assert "proof" not in response.json()
