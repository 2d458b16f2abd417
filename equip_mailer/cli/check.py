"""``equip-mailer check``: a campaign read end to end (spec, lists, templates, the store's
suppressions) without sending or recording anything, so mistakes show before a send."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from equip_mailer.cli.common import (
    allow_past_opt,
    campaign_arg,
    console,
    err_console,
    friendly_errors,
    main,
    settings,
)
from equip_mailer.errors import EquipError, ListError, SpecError

if TYPE_CHECKING:
    from rich.table import Table

    from equip_mailer.compose.audience import Audience
    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.compose.render.personalisation import RenderedSegment
    from equip_mailer.config import Settings
    from equip_mailer.people.records import PeopleRecords


@main.command()
@campaign_arg
@allow_past_opt
@friendly_errors
def check(campaign: Path, allow_past: bool) -> None:
    """Check a campaign without sending anything: spec, mailing lists and templates.

    Prints each segment with its number of recipients, the totals, the roles each segment
    took as its catch-all, and then every rejected row as file:line: problem. Exits with
    status 1 when the campaign file has problems (all are listed, one per line), a list
    cannot be read, or a list has more bad rows than lists.max_reject_share allows (every
    bad row is listed first, then that verdict).

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
    """
    from equip_mailer.compose.audience import load_audience
    from equip_mailer.compose.spec import load_campaign

    try:
        spec = load_campaign(campaign, allow_past=allow_past)
    except SpecError as exc:
        _exit_with_problems(campaign, exc)

    keys, people, store_note = _store_records(settings())
    audience = load_audience(spec, suppressed=keys, people=people, read_on=True)
    rendered, template_note = _check_templates(spec)

    console.print(_segments_table(spec, audience, rendered))
    total = len(audience.recipients)
    console.print(
        f"Rows read {audience.rows_read:,} · rejected {len(audience.rejects):,} · "
        f"duplicates {audience.duplicates:,} · suppressed {audience.suppressed:,} "
        f"({len(keys):,} from the database) · recipients {total:,}",
        markup=False,
        soft_wrap=True,
    )
    for note in (store_note, template_note):
        if note:
            console.print(f"Note: {note}", markup=False, soft_wrap=True)
    if template_note is None:
        console.print("Templates: every segment renders.", markup=False)
    _print_catch_all_roles(spec, audience)
    _print_moves(audience)
    _print_dropped_rows(audience)
    if audience.over_reject_share:
        for verdict in audience.over_reject_share[:-1]:
            err_console.print(f"Error: {verdict}", markup=False, highlight=False, soft_wrap=True)
        where, _, message = audience.over_reject_share[-1].partition(": ")
        raise ListError(
            message + "; nothing can be sent until the rows above are fixed",
            where=where,
            hint="Fix the rows named above (or the column headers), then run check again.",
        )
    if total == 0:
        raise EquipError(
            "no one would get this newsletter: every list is empty after checks",
            hint="Check the files under 'lists:' in the campaign.",
        )


def _print_catch_all_roles(spec: Campaign, audience: Audience) -> None:
    """Per segment, the roles of readers no segment names by role, who went to the level's
    catch-all: a "Salaried GP" in a version written for non-clinical staff shows here."""
    if not audience.catch_all_roles:
        return
    console.print("\nRoles in each segment's catch-all (no segment names them):", markup=False)
    for segment in spec.segments:
        roles = audience.catch_all_roles.get(segment.id)
        if not roles:
            continue
        listed = ", ".join(
            f"{role or '(no role)'} {count:,}"
            for role, count in sorted(roles.items(), key=lambda rc: (-rc[1], rc[0].casefold()))
        )
        console.print(
            f"{segment.id} ({segment.name}): {listed}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _exit_with_problems(campaign: Path, exc: SpecError) -> NoReturn:
    """Every problem in the spec, one per line, then a count: exit status 1."""
    for problem in exc.problems:
        err_console.print(problem, markup=False, highlight=False, soft_wrap=True)
    count = len(exc.problems)
    err_console.print(
        f"{count} problem{'s' if count != 1 else ''} in {campaign}; nothing was checked further.",
        markup=False,
        soft_wrap=True,
    )
    if exc.hint:
        err_console.print(f"Hint: {exc.hint}", markup=False, soft_wrap=True)
    sys.exit(1)


def _store_records(cfg: Settings) -> tuple[set[str], PeopleRecords | None, str | None]:
    """The store's suppressed addresses and what it knows of people (recorded QI levels,
    erased addresses), read without creating or migrating anything.

    Returns (keys, people, note): a check must not leave a database file behind, so a SQLite
    file that does not exist yet simply means "nothing recorded".
    """
    import sqlalchemy as sa

    from equip_mailer.people import records
    from equip_mailer.store.engine import make_engine
    from equip_mailer.store.rows import suppressed_keys

    database_url = cfg.database_url
    secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None

    try:
        url = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError:
        return set(), None, "EQUIP_DATABASE_URL is not a database URL; store suppressions not read"
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).exists():
            return set(), None, None
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("suppressions"):
                return set(), None, None
            return suppressed_keys(conn), records.load(conn, secret), None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return set(), None, f"could not read suppressions from the database ({reason})"
    finally:
        engine.dispose()


def _check_templates(spec: Campaign) -> tuple[dict[str, RenderedSegment], str | None]:
    """Render every segment once: ({segment id: rendered}, note when the renderer is missing)."""
    try:
        from equip_mailer.compose.render.pipeline import render_campaign
    except ImportError:
        return {}, "templates not checked: the renderer (equip_mailer.render) is not available"
    # RenderError names the template line
    return render_campaign(spec, pages_url=settings().public_url), None


def _segments_table(
    spec: Campaign, audience: Audience, rendered: dict[str, RenderedSegment]
) -> Table:
    """One row per segment (recipients, subject as rendered) and the total."""
    from rich.table import Table

    table = Table(title=f"{spec.id}: {spec.title}", title_justify="left")
    table.add_column("Segment", no_wrap=True)
    table.add_column("Name")
    table.add_column("QI levels")
    table.add_column("Recipients", justify="right")
    table.add_column("Subject", overflow="fold")
    for segment in spec.segments:
        levels = ", ".join(segment.qi_levels)
        # As written, placeholders and all: the rendered one holds send-time tokens.
        subject = segment.subject or spec.subject
        table.add_row(
            segment.id, segment.name, levels, f"{len(audience.by_segment[segment.id]):,}", subject
        )
    table.add_row("", "Total", "", f"{len(audience.recipients):,}", "", end_section=True)
    return table


def _print_moves(audience: Audience) -> None:
    """Who the training moved above their list's QI level, and why, one line per reason."""
    from equip_mailer.people.levels import describe_moves

    lines = describe_moves(audience.raised)
    if lines:
        console.print("QI levels recorded here, higher than the lists say:", markup=False)
        for line in lines:
            console.print(f"  {line}", markup=False, soft_wrap=True)


def _print_dropped_rows(audience: Audience) -> None:
    """Rejected rows, then dropped duplicates, each as file:line: why."""
    if audience.rejects:
        console.print(
            f"\nRejected rows ({len(audience.rejects):,}; they will not be mailed):", markup=False
        )
        for reject in audience.rejects:
            console.print(str(reject), markup=False, highlight=False, soft_wrap=True)
    if audience.duplicate_rows:
        console.print(
            f"\nDuplicate rows ({audience.duplicates:,}; the first row is kept):", markup=False
        )
        for duplicate in audience.duplicate_rows:
            console.print(str(duplicate), markup=False, highlight=False, soft_wrap=True)
