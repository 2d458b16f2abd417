"""The click lookups' cache: a link's URL changed in place by a later send is followed
once its cache entry expires, and clicks record the URL they were sent to.
"""

from __future__ import annotations

import time

import httpx
from support.service import running_app
from support.tracking_data import ANN, CHROME
from support.tracking_data import written_rows as rows

from equip_mailer import store
from equip_mailer.track.app import create_app
from equip_mailer.track.lookups import Lookups


def test_a_changed_link_url_is_followed_once_the_cache_entry_expires(
    settings, engine, campaign, monkeypatch
):
    monkeypatch.setattr(Lookups, "LINK_TTL", 0.2)
    with running_app(create_app(settings, engine)) as base:
        with httpx.Client(
            base_url=base, follow_redirects=False, headers={"User-Agent": CHROME}
        ) as c:
            path = campaign.click_path("about", ANN)
            assert c.get(path).headers["location"] == campaign.urls["about"]
            with engine.begin() as conn:
                conn.execute(
                    store.links.update()
                    .where(store.links.c.id == campaign.link_ids["about"])
                    .values(url="https://equip.example.org/about-us?utm_medium=email")
                )
            time.sleep(0.3)
            assert (
                c.get(path).headers["location"]
                == "https://equip.example.org/about-us?utm_medium=email"
            )
    recorded = rows(engine, store.events, store.events.c.event == "click")
    assert [r.url for r in recorded] == [
        campaign.urls["about"],
        "https://equip.example.org/about-us?utm_medium=email",
    ]
