"""Next quarter's segments follow the training: check and send read each person at the higher
of their list's level and the recorded one, and leave erased addresses out."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from support.link_secrets import LINK_SECRET

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.compose.audience import load_audience
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import ConfigError
from equip_mailer.people import levels, records

WHEN = dt.datetime(2019, 10, 1, 9, 0)
SECRET = LINK_SECRET.encode()
# On the demo lists at QI level none (getting-started), basics and none again.
VIK = "vik.fernandez1@nhs.example"
OLIVER = "oliver.miah2@nhs.example"
FARAH = "farah.williams1001@example.org"


def segment_of(audience, email):
    return next(s for s, rs in audience.by_segment.items() if any(r.key == email for r in rs))


def test_the_higher_level_wins_and_erased_people_are_left_out(demo_project):
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.begin() as conn:
        levels.set_level(conn, VIK, "basics", "did EQUIP Basics elsewhere", "team", WHEN)
        levels.set_level(conn, OLIVER, "none", "a mistake in the list", "team", WHEN)
        store.add_suppression(conn, records.erased_key(SECRET, FARAH), "erased")
        people = records.load(conn, SECRET)
    spec = load_campaign(demo_project / "campaigns/2019-04-equip-training.yaml", allow_past=True)
    before = load_audience(spec)
    after = load_audience(spec, people=people)

    assert segment_of(before, VIK) == "getting-started"
    assert segment_of(after, VIK) == "ready-for-action"
    assert segment_of(after, OLIVER) == "ready-for-action"  # the list says more: it wins
    assert [key for key, _ in after.raised] == [VIK]
    assert FARAH in {r.key for r in before.recipients}
    assert FARAH not in {r.key for r in after.recipients}
    assert after.suppressed == before.suppressed + 1
    assert len(after.recipients) == len(before.recipients) - 1


def test_erased_people_need_the_link_secret_to_be_recognised(sqlite_url):
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        store.add_suppression(conn, records.erased_key(SECRET, FARAH), "erased")
        with pytest.raises(ConfigError, match="EQUIP_LINK_SECRET is not set"):
            records.load(conn, None)
        other = records.load(conn, b"another secret of enough length for the test......")
    assert not other.erased(FARAH)  # a hash under another key matches nothing


def test_erased_key_is_keyed_and_case_blind():
    one = records.erased_key(SECRET, "Ann@Example.org")
    assert one == records.erased_key(SECRET, "ann@example.org ")
    assert one.startswith("erased:") and "ann" not in one
    assert one != records.erased_key(b"x" * 32, "ann@example.org")


def test_check_shows_who_moved_and_why(demo_project):
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    from equip_mailer.signup.catalogue import find_course, register_courses

    spec = load_campaign(demo_project / "campaigns/2019-04-equip-training.yaml", allow_past=True)
    with engine.begin() as conn:
        register_courses(conn, spec)
        basics = find_course(conn, spec.id, "equip-basics")
        for email in (VIK, FARAH):
            levels.raise_for_course(conn, email, basics, dt.date(2019, 6, 27), "cli", WHEN)
        levels.set_level(conn, "laila.evans4@nhs.example", "project", "QI lead", "team", WHEN)
    engine.dispose()

    result = CliRunner().invoke(
        main, ["check", "campaigns/2019-04-equip-training.yaml", "--allow-past"]
    )

    assert result.exit_code == 0, result.output
    assert "QI levels recorded here, higher than the lists say:" in result.output
    assert "  2 people now at basics after EQUIP Basics, 2019-06-27" in result.output
    # Laila is suppressed (lists/suppressions.csv): left out before her level matters
    assert "QI lead" not in result.output
