"""/healthz: 200 with the schema version while the database answers."""

from __future__ import annotations

from equip_mailer import store


def test_healthz_reports_the_store_and_its_schema(service):
    _, client = service
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["db"] == "ok"
    assert response.json()["schema_version"] == store.SCHEMA_VERSION
