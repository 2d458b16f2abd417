"""The synthetic project the benchmarks send and report on: the demo campaign's content with
synthetic lists of any size, plus the settings and secrets every benchmark shares.

Built from the demo spec (campaigns/2019-04-equip-training.yaml) rather than a spec of its
own, so the figures follow the real templates and content as they change.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from equip_mailer.config import Settings

REPO = Path(__file__).resolve().parents[1]
DEMO_SPEC = REPO / "campaigns" / "2019-04-equip-training.yaml"
API_KEY = "SG.bench-key"
LINK_SECRET = "bench-link-secret-not-for-production-0123456789"
CAMPAIGN_ID = "bench-newsletter"
PUBLIC_URL = "http://127.0.0.1:8025"
BROWSER_UA = (  # what the webhook's opens and clicks and the redirect's requests carry
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)

ROLE_SEGMENTS = """  - id: citizens
    name: Citizens and service users
    qi_levels: [none]
    roles: [Citizen, Service user]
  - id: clinicians-basics
    name: Clinicians with basic QI
    qi_levels: [basics]
    roles: [GP, Practice nurse, Pharmacist, Physician associate]
"""

LISTS_BLOCK = (
    "lists:\n  files:\n    - lists/staff.csv\n    - lists/citizens.csv\n"
    "  suppressions: null\n  max_reject_share: 0.05\n"
)


def write_project(root: Path, n_recipients: int, campaign_id: str = CAMPAIGN_ID) -> Path:
    """A project folder (campaigns/, lists/, templates/) whose spec is the demo's content
    with ``n_recipients`` synthetic readers (90 % practice staff, 10 % citizens).

    Five segments, as issue 6 asks: the demo's three (one per QI level) plus two that split a
    level by role (citizens and service users new to QI; clinicians with basic QI).
    """
    from equip_mailer import synthetic

    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "templates", root / "templates", dirs_exist_ok=True)
    n_staff = n_recipients * 9 // 10
    n_citizens = n_recipients - n_staff
    staff = synthetic.people(n_staff, kind="staff", seed=7)
    citizens = synthetic.people(n_citizens, kind="citizens", seed=7, start=n_staff + 1)
    synthetic.write_csv(root / "lists" / "staff.csv", staff)
    synthetic.write_csv(root / "lists" / "citizens.csv", citizens)
    text = DEMO_SPEC.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^id: .*$", f"id: {campaign_id}", text, count=1)
    text, n = re.subn(r"(?m)^lists:\n(?:[ \t]+.*\n)+", LISTS_BLOCK, text, count=1)
    if n != 1:
        raise RuntimeError(f"could not find the lists block in {DEMO_SPEC}")
    text, n = re.subn(r"(?m)^segments:\n", "segments:\n" + ROLE_SEGMENTS, text, count=1)
    if n != 1:
        raise RuntimeError(f"could not find the segments block in {DEMO_SPEC}")
    spec = root / "campaigns" / f"{campaign_id}.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


def bench_settings(**kw: Any) -> Settings:
    """Settings as the benchmarks' sends use them (our link secret and public URL)."""
    from equip_mailer.config import Settings

    return Settings(link_secret=LINK_SECRET, public_url=PUBLIC_URL, **kw)


def db_time(value: dt.datetime) -> str:
    """A naive UTC time as SQLAlchemy's SQLite DateTime stores it."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")
