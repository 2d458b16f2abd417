"""Sign-ups: the courses and sessions a campaign offers, who signed up, and open sign-up invites.

The tracking service may run on another server than ``send``, against the same database, so
everything a sign-up page needs is copied here when a campaign is sent or checked
(``signup.catalogue.register_courses``): the service works from the store alone, never from
the spec file.

- ``signup_courses``: one row per course of a campaign, hosted (``sign_up: equip``) or not
  (external courses are kept too, so imports and reports can hang sign-ups from them);
- ``signup_sessions``: one row per session, its times in UTC and its ``places``;
- ``registrations``: one row per (course, person): confirmed, waiting or cancelled. The
  course row is the lock every change of places takes, and ``queue_seq`` is the arrival
  order within the course (the waiting list is served in it);
- ``signup_invites``: an open sign-up's address, waiting for its owner to follow the link
  mailed to it (double opt-in); also what rate-limits open sign-ups.

Personal data (``forget`` must erase it): ``registrations.email``, ``email_key``, ``name``,
``practice``, ``role``, ``access_needs``; ``signup_invites.email``, ``email_key`` and
``ip_hash`` (a keyed hash). Times are naive UTC like the rest of the store.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import metadata

REGISTRATION_STATES = ("confirmed", "waiting", "cancelled")
# list: a reader of the campaign (token from the email); open: someone who gave their address
# on the open sign-up page and confirmed it; import: an external booking tool's export;
# team: added by the EQUIP team.
REGISTRATION_SOURCES = ("list", "open", "import", "team")

signup_courses = sa.Table(
    "signup_courses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(100), sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("course_id", sa.String(100), nullable=False),  # the spec's course id
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("format", sa.Text),
    sa.Column("schedule", sa.String(20), nullable=False),  # choose_one | attend_all
    sa.Column("attendance", sa.Text),  # what attendance means, in the spec's words
    sa.Column("who_can_register", sa.Text),
    sa.Column("requires", sa.String(20)),  # lowest QI level
    sa.Column("leads_to", sa.String(20)),  # the level completing it gives (migration 7)
    sa.Column("privacy_url", sa.Text),  # the campaign's privacy notice (migration 7)
    sa.Column("hosted", sa.Boolean, nullable=False),  # sign_up: equip
    sa.Column("sign_up_url", sa.Text),  # the external booking page, when not hosted
    sa.Column("waiting_list", sa.Boolean, nullable=False),
    sa.Column("closes_at", sa.DateTime),  # UTC; hosted courses only
    sa.Column("sender_email", sa.String(320), nullable=False),  # mails come from the campaign
    sa.Column("sender_name", sa.Text),
    sa.Column("reply_to_email", sa.String(320)),
    sa.Column("reply_to_name", sa.Text),
    sa.Column("organisation", sa.Text),  # the campaign's footer, for the mails' footer
    sa.Column("active", sa.Boolean, nullable=False),  # False: no longer in the spec
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("campaign_id", "course_id", name="uq_signup_courses_campaign_course"),
)

signup_sessions = sa.Table(
    "signup_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signup_course_id", sa.Integer, sa.ForeignKey("signup_courses.id"), nullable=False),
    sa.Column("session_key", sa.String(100), nullable=False),  # "2019-06-27", as links.session
    sa.Column("position", sa.Integer, nullable=False),  # order in the spec
    sa.Column("starts_at", sa.DateTime, nullable=False),  # UTC
    sa.Column("ends_at", sa.DateTime, nullable=False),  # UTC
    sa.Column("venue", sa.Text),
    sa.Column("places", sa.Integer),  # NULL: unlimited
    sa.Column("active", sa.Boolean, nullable=False),  # False: no longer in the spec
    # Bumped when the time or venue changes, so a calendar sent again replaces the old entry.
    sa.Column("revision", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("signup_course_id", "session_key", name="uq_signup_sessions_course_key"),
)

registrations = sa.Table(
    "registrations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signup_course_id", sa.Integer, sa.ForeignKey("signup_courses.id"), nullable=False),
    # The chosen session (choose_one); NULL when one registration covers every date.
    sa.Column("session_id", sa.Integer, sa.ForeignKey("signup_sessions.id")),
    sa.Column("campaign_id", sa.String(100), nullable=False),  # copies, for plain queries
    sa.Column("course_id", sa.String(100), nullable=False),
    sa.Column("ledger_id", sa.Integer),  # the reader's ledger row, when they came from a list
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),  # lower-cased: once per course
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("practice", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("access_needs", sa.Text),  # shown only in rosters
    sa.Column("status", sa.String(20), nullable=False),  # REGISTRATION_STATES
    sa.Column("source", sa.String(20), nullable=False),  # REGISTRATION_SOURCES
    sa.Column("queue_seq", sa.Integer, nullable=False),  # arrival order within the course
    sa.Column("revision", sa.Integer, nullable=False, default=0),  # bumped on every change
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("confirmed_at", sa.DateTime),
    sa.Column("cancelled_at", sa.DateTime),
    sa.Column("cancelled_by", sa.String(20)),  # self | team
    sa.UniqueConstraint("signup_course_id", "email_key", name="uq_registrations_course_email"),
    # A date's confirmed places and a waiting person's position, from the index alone.
    sa.Index(
        "ix_registrations_course_status_session",
        "signup_course_id",
        "status",
        "session_id",
        "queue_seq",
    ),
    sa.Index("ix_registrations_course_seq", "signup_course_id", "queue_seq"),  # arrival order
    sa.Index("ix_registrations_session_status", "session_id", "status"),
    sa.Index("ix_registrations_campaign", "campaign_id", "course_id"),
    sa.Index("ix_registrations_email", "email_key"),
)

signup_invites = sa.Table(
    "signup_invites",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signup_course_id", sa.Integer, sa.ForeignKey("signup_courses.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("ip_hash", sa.String(64)),  # keyed hash, for the per-IP limit
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("used_at", sa.DateTime),  # when its link led to a registration
    sa.Index("ix_signup_invites_email_at", "email_key", "created_at"),
    sa.Index("ix_signup_invites_ip_at", "ip_hash", "created_at"),
)

SIGNUP_TABLES = (signup_courses, signup_sessions, registrations, signup_invites)

__all__ = [
    "REGISTRATION_SOURCES",
    "REGISTRATION_STATES",
    "SIGNUP_TABLES",
    "registrations",
    "signup_courses",
    "signup_invites",
    "signup_sessions",
]
