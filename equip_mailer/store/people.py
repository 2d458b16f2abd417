"""People: who attended which session, and the QI level the training (or the team) gave them.

- ``attendance``: one row per (session, person) saying whether they came, as the last sheet
  or team member said; ``registration_id`` links it to the place when there was one (a
  walk-in, or someone booked by an external tool, has none). Keyed by ``email_key`` (the
  lower-cased address) because the next quarter's lists know people only by address.
- ``attendance_log``: every change of an ``attendance`` row (first mark, corrections), with
  who made it and from which sheet, so a correction never loses what was said before.
- ``person_levels``: the QI level history recorded here, one row per change: ``course``
  (completing a course raised it to the course's ``leads_to``) or ``hand`` (set by the team,
  with a reason). A course row whose completion an attendance correction undid is kept with
  ``withdrawn_at`` set; the recorded level is the newest row not withdrawn. The level a
  list gives is not copied here: check and send take the higher of the two when they read.

Personal data (``forget`` erases it): every ``email_key``, and ``recorded_by`` / ``reason``
where they name a person. Times are naive UTC like the rest of the store.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import metadata

LEVEL_SOURCES = ("course", "hand")

attendance = sa.Table(
    "attendance",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signup_course_id", sa.Integer, sa.ForeignKey("signup_courses.id"), nullable=False),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("signup_sessions.id"), nullable=False),
    sa.Column("registration_id", sa.Integer),  # their place, when they had one
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("attended", sa.Boolean, nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # "roster 2019-06-27.xlsx row 4", "team page"
    sa.Column("recorded_by", sa.Text),  # the team member or "cli"
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("session_id", "email_key", name="uq_attendance_session_email"),
    sa.Index("ix_attendance_email", "email_key"),
    sa.Index("ix_attendance_course", "signup_course_id", "email_key"),
)

attendance_log = sa.Table(
    "attendance_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("attendance_id", sa.Integer, sa.ForeignKey("attendance.id"), nullable=False),
    sa.Column("attended", sa.Boolean, nullable=False),
    sa.Column("previous", sa.Boolean),  # None: the first mark
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("recorded_by", sa.Text),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Index("ix_attendance_log_attendance", "attendance_id"),
)

person_levels = sa.Table(
    "person_levels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("level", sa.String(20), nullable=False),
    sa.Column("previous_level", sa.String(20)),  # the recorded level before; None: none was
    sa.Column("source", sa.String(20), nullable=False),  # LEVEL_SOURCES
    sa.Column("reason", sa.Text, nullable=False),  # "completed EQUIP Basics, 2019-06-27"
    sa.Column("signup_course_id", sa.Integer),  # the course completed (source course)
    sa.Column("campaign_id", sa.String(100)),
    sa.Column("course_name", sa.Text),
    sa.Column("effective_on", sa.Date, nullable=False),  # the day it became true
    sa.Column("recorded_by", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("withdrawn_at", sa.DateTime),  # an attendance correction undid the completion
    sa.Column("withdrawn_reason", sa.Text),
    sa.Index("ix_person_levels_email", "email_key", "id"),
)

PEOPLE_TABLES = (attendance, attendance_log, person_levels)

__all__ = ["LEVEL_SOURCES", "PEOPLE_TABLES", "attendance", "attendance_log", "person_levels"]
