"""A demo project with readers signed up for EQUIP Basics, for the people tests."""

from __future__ import annotations

import pytest
from support.sign_in_sheets import SPEC
from support.signup_data import NOW

from equip_mailer import store
from equip_mailer.compose.spec import load_campaign
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses


@pytest.fixture
def signed_up(demo_project):
    """The demo project's store with three list readers on EQUIP Basics, 27 June."""
    spec = load_campaign(demo_project / SPEC, allow_past=True)
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    people = []
    with engine.begin() as conn:
        register_courses(conn, spec)
        basics = find_course(conn, spec.id, "equip-basics")
        action = find_course(conn, spec.id, "equip-in-action")
    for email, name in (
        ("vik.fernandez1@nhs.example", "Vik Fernández"),
        ("laila.evans4@nhs.example", "Laila Evans"),
        ("farah.williams1001@example.org", "Farah Williams"),
    ):
        with store.immediate(engine) as conn:
            applicant = reg.Applicant(email=email, name=name, practice="Tower View Surgery")
            outcome = reg.register(conn, basics.id, applicant, basics.sessions[0].id, NOW)
            people.append((outcome.registration,))
    engine.dispose()
    return {
        "engine_url": f"sqlite:///{demo_project / 'equip.db'}",
        "basics": basics,
        "action": action,
        "people": people,
        "root": demo_project,
    }
