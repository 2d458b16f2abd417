"""``equip-mailer check``: a campaign read end to end (spec, lists, templates, the store's
suppressions) without sending or recording anything, so mistakes show before a send."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

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
@click.option(
    "--online",
    is_flag=True,
    help="Also ask the service at EQUIP_PUBLIC_URL/healthz whether it holds this link secret "
    "and reads this store (what a real send checks before any request).",
)
@friendly_errors
def check(campaign: Path, allow_past: bool, online: bool) -> None:
    """Check a campaign without sending anything: spec, mailing lists and templates.

    Prints each segment with its number of recipients, the totals, the roles each segment
    took as its catch-all, and then every rejected row as file:line: problem. Exits with
    status 1 when the campaign file has problems (all are listed, one per line), a list
    cannot be read, or a list has more bad rows than lists.max_reject_share allows (every
    bad row is listed first, then that verdict). Warns about what would make a real send
    through SendGrid refuse (the pre-flight: public URL, webhook key, sender domain); a link
    secret other than the one the store's mail was signed with is an error.

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past --online
    """
    from equip_mailer.compose.audience import load_audience
    from equip_mailer.compose.spec import load_campaign

    cfg = settings(campaign)
    try:
        spec = load_campaign(campaign, allow_past=allow_past)
    except SpecError as exc:
        _exit_with_problems(campaign, exc)

    keys, people, store_note, digest = _read_store(cfg, spec.id)
    audience = load_audience(spec, suppressed=keys, people=people, read_on=True)
    rendered, template_note = _check_templates(spec, cfg)

    console.print(_segments_table(spec, audience, rendered))
    total = len(audience.recipients)
    console.print(
        f"Rows read {audience.rows_read:,} · rejected {len(audience.rejects):,} · "
        f"duplicates {audience.duplicates:,} · suppressed {audience.suppressed:,} "
        f"({audience.suppressed_by_store:,} of them by the database) · recipients {total:,}",
        markup=False,
        soft_wrap=True,
    )
    for note in (store_note, template_note):
        if note:
            console.print(f"Note: {note}", markup=False, soft_wrap=True)
    if template_note is None:
        console.print("Templates: every segment renders.", markup=False)
    _print_catch_all_roles(spec, audience)
    _print_unread_sheets(spec)
    _print_moves(audience)
    _print_dropped_rows(audience)
    _print_non_ascii_mailboxes(audience)
    for shown in audience.empty_files:
        console.print(
            f"Warning: {shown} has no rows under its header, so nobody on it will be mailed "
            "(was it saved before the rows were added?)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if audience.over_reject_share:
        for verdict in audience.over_reject_share[:-1]:
            err_console.print(f"Error: {verdict}", markup=False, highlight=False, soft_wrap=True)
        where, _, message = audience.over_reject_share[-1].partition(": ")
        raise ListError(
            message + "; nothing can be sent until the rows above are fixed",
            where=where,
            hint="Fix the rows named above (or the column headers), then run check again.",
        )
    _print_preflight(spec, cfg)
    if online:
        _check_service(spec, cfg, digest)
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


def _print_unread_sheets(spec: Campaign) -> None:
    """A workbook listed without a sheet is read from its first sheet with an email column:
    when another sheet has one too, say which was read and how to name the other, since
    nothing else on screen shows that "Leavers" was mailed and "Staff" was not."""
    from equip_mailer.compose.xlsx_lists import sheets_with_column

    for shown in spec.lists.files:
        path = spec.path(shown)
        if spec.lists.sheet(shown) is not None:
            continue
        try:
            with path.open("rb") as f:
                if f.read(4) != b"PK\x03\x04":
                    continue  # not a workbook
                f.seek(0)
                sheets = sheets_with_column(f.read(), shown, "email")
        except (OSError, EquipError):
            continue  # read already, or refused already, by the lists check
        if len(sheets) < 2:
            continue
        others = ", ".join(repr(name) for name in sheets[1:])
        console.print(
            f"Note: {shown} was read from its sheet {sheets[0]!r}; {others} "
            f"{'has' if len(sheets) == 2 else 'have'} an email column too and "
            f"{'was' if len(sheets) == 2 else 'were'} not read. To read another, name it "
            f"under 'lists: files:' as - {{file: {shown}, sheet: {sheets[1]}}}",
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


def _read_store(
    cfg: Settings, campaign_id: str
) -> tuple[set[str], PeopleRecords | None, str | None, str]:
    """The store's suppressed addresses, what it knows of people (recorded QI levels,
    erased addresses) and the campaign's links digest, read without creating or migrating
    anything; a link secret other than the one the store's mail was signed with is an error.

    Returns (keys, people, note, digest): a check must not leave a database file behind, so
    a SQLite file that does not exist yet simply means "nothing recorded".
    """
    import sqlalchemy as sa

    from equip_mailer.people import records
    from equip_mailer.store import identity
    from equip_mailer.store.engine import make_engine
    from equip_mailer.store.rows import suppressed_keys

    database_url = cfg.database_url
    secret = cfg.require_link_secret()
    try:
        url = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError:
        note = "EQUIP_DATABASE_URL is not a database URL; store suppressions not read"
        return set(), None, note, ""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).exists():
            return set(), None, None, ""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            identity.check(conn, secret, cfg.where("link_secret"))
            inspect = sa.inspect(conn)
            digest = identity.links_digest(conn, campaign_id) if inspect.has_table("links") else ""
            if not inspect.has_table("suppressions"):
                return set(), None, None, digest
            return suppressed_keys(conn), records.load(conn, secret), None, digest
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return set(), None, f"could not read suppressions from the database ({reason})", ""
    finally:
        engine.dispose()


def _print_preflight(spec: Campaign, cfg: Settings) -> None:
    """The pre-flight verdicts a real SendGrid send would refuse on, as warnings."""
    from equip_mailer.send.preflight import verdicts

    found = verdicts(spec, cfg)
    if not found:
        console.print("Before a real send: the pre-flight checks pass.", markup=False)
        return
    console.print(
        f"\nWarnings: a real send through SendGrid would be refused ({len(found)}):",
        markup=False,
    )
    for verdict in found:
        console.print(f"Warning: {verdict}.", markup=False, soft_wrap=True)


def _check_service(spec: Campaign, cfg: Settings, digest: str) -> None:
    """check --online: the live service's answer to the same challenge a real send asks."""
    from equip_mailer.send.preflight import relies_on_webhook
    from equip_mailer.send.service_check import confirm_service

    confirm_service(
        cfg.public_url,
        cfg.require_link_secret(),
        spec.id,
        digest,
        needs_webhook=relies_on_webhook(spec) is not None,
        timeout=cfg.sendgrid_timeout,
        skip="Run check without --online to leave the service out.",
    )
    known = "and knows this campaign's links" if digest else "(no links registered yet)"
    console.print(
        f"Service at {cfg.public_url}: answers with this link secret {known}.",
        markup=False,
        soft_wrap=True,
    )


def _check_templates(
    spec: Campaign, cfg: Settings
) -> tuple[dict[str, RenderedSegment], str | None]:
    """Render every segment once: ({segment id: rendered}, note when the renderer is missing)."""
    try:
        from equip_mailer.compose.render.pipeline import render_campaign
    except ImportError:
        return {}, "templates not checked: the renderer (equip_mailer.render) is not available"
    # RenderError names the template line
    return render_campaign(spec, pages_url=cfg.public_url), None


def _segments_table(
    spec: Campaign, audience: Audience, rendered: dict[str, RenderedSegment]
) -> Table:
    """One row per segment (recipients, subject as rendered) and the total."""
    from rich.table import Table
    from rich.text import Text

    # Text(): a name like "[/x]" or "[link=...]" is shown as written, never read as markup
    table = Table(title=Text(f"{spec.id}: {spec.title}"), title_justify="left")
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
            segment.id,
            Text(segment.name),
            levels,
            f"{len(audience.by_segment[segment.id]):,}",
            Text(subject),
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


def _print_non_ascii_mailboxes(audience: Audience) -> None:
    """An address with an accented letter before the @ ("zoë@...") is valid (RFC 6531), but
    SendGrid does not deliver to it: the message is dropped as an invalid address. Such a
    row stays on the list; check says so, to ask them for another address before sending."""
    odd = [r.source for r in audience.recipients if not r.email.partition("@")[0].isascii()]
    if not odd:
        return
    console.print(
        f"Warning: {len(odd):,} address{'es have' if len(odd) != 1 else ' has'} letters "
        "outside plain ASCII before the @ ("
        + ", ".join(odd[:5])
        + (" …" if len(odd) > 5 else "")
        + "): SendGrid does not deliver to such addresses, and drops them as invalid. Ask "
        "those people for another address (most have one without accents).",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


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
