"""``equip-mailer attendance``, ``people export`` and ``people level``: the QI journey
(attendance moves people along none → basics → project); ``person``, ``forget`` and
``purge``: what the store holds about a person, erasing it, and the retention limit."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from equip_mailer.cli.common import (
    campaign_arg,
    console,
    friendly_errors,
    main,
    open_campaign,
    settings,
)
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from equip_mailer.config import Settings
    from equip_mailer.project import Project


def _who() -> str:
    """Who ran the command, for the history ("cli: ann"); no address."""
    try:
        return f"cli: {getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@main.command()
@campaign_arg
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def attendance(campaign: Path, sheet: Path) -> None:
    """Import a completed sign-in sheet: who attended which session.

    SHEET is the roster file (CSV or XLSX) with its Attended column filled in (yes/no; also
    y/n, x, ✓, 1/0, attended/absent; rows left blank are not marked yet), or a plain list
    with the columns email and session (one row per session attended). Rows are matched by
    Registration, else by email and session. Every row is checked first: if any is wrong,
    all are named and nothing is recorded. Importing the same sheet twice changes nothing;
    a later sheet saying "no" where an earlier said "yes" is recorded as a correction.

    Completing a course (every day of an attend-all course, one of a choose-one course)
    raises the person to the QI level it leads to, and the next campaign's check and send
    put them in that segment. Like send, it first copies the campaign's courses into the
    store: people whose dates moved since the last send are emailed the new details.

    \b
    Example:
      equip-mailer attendance campaigns/2019-04-equip-training.yaml \\
          rosters/2019-04-equip-training/equip-basics_2019-06-27.xlsx
    """
    from equip_mailer.cli.send_checks import sync_signups
    from equip_mailer.people.sheets import import_sheet, summary
    from equip_mailer.store import utcnow

    spec, cfg, engine = open_campaign(campaign, allow_past=True)  # sessions are over by now
    secret = cfg.require_link_secret()
    with engine.connect() as conn:  # erased people are known by their hash under it
        _same_link_secret(conn, secret, cfg)
    # The store must know each course's leads_to; copying the courses tells whoever's dates
    # moved since the last send, as send would have (the copy would otherwise absorb it).
    sync_signups(spec, cfg, engine, cfg.outbox)
    result = import_sheet(engine, spec.id, sheet, str(sheet), _who(), utcnow(), secret)
    for line in summary(result):
        console.print(line, markup=False, soft_wrap=True)


@main.group()
def people() -> None:
    """QI levels as training moved them: export a list, set a level by hand.

    \b
    Example:
      equip-mailer people export campaigns/2019-04-equip-training.yaml --out lists/people.csv
      equip-mailer people level ann@nhs.example basics --reason "did EQUIP Basics in 2018"
    """


@people.command("export")
@campaign_arg
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The list to write (.csv or .xlsx).",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@friendly_errors
def export(campaign: Path, out: Path, force: bool) -> None:
    """Write the campaign's lists as one list, in the shipped list format, with each
    person's current QI level (the higher of the list's and the one training gave them),
    for teams that keep the spreadsheet as the master. Erased people are left out;
    suppressed ones stay (the suppression list still stops them).

    \b
    Example:
      equip-mailer people export campaigns/2019-04-equip-training.yaml --out people.csv
    """
    from equip_mailer.people.export import export_people

    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise EquipError(
            f"{out}: people export writes .csv or .xlsx, not {out.suffix or 'a file without one'}",
            hint="Name the file people.csv or people.xlsx.",
        )
    spec, cfg, engine = open_campaign(campaign, allow_past=True)
    if out.exists() and not force:
        raise EquipError(f"{out} exists already", hint="Choose another --out, or add --force.")
    secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None
    if secret is not None:
        with engine.connect() as conn:
            _same_link_secret(conn, secret, cfg)
    written = export_people(spec, engine, secret, out)
    console.print(
        f"Wrote {written.rows:,} people to {out}: {written.raised:,} at a higher QI level "
        f"than their list says, {written.erased:,} erased left out.",
        markup=False,
        soft_wrap=True,
    )


@people.command("level")
@click.argument("email")
@click.argument("level", type=click.Choice(["none", "basics", "project"]), metavar="LEVEL")
@click.option("--reason", required=True, help="Why, in a few words (kept in the history).")
@friendly_errors
def level(email: str, level: str, reason: str) -> None:
    """Set a person's QI level by hand, with a reason (kept in their history; the next
    check and send use the higher of it and their list's level).

    LEVEL is none, basics (basic QI knowledge, as after EQUIP Basics) or project (running
    a QI project, as after EQUIP in Action).

    \b
    Example:
      equip-mailer people level ann@nhs.example project --reason "leads her practice's QI project"
    """
    from equip_mailer.compose.campaign import level_rank
    from equip_mailer.compose.cell_values import normalise_email
    from equip_mailer.config import mask_email
    from equip_mailer.people.levels import set_level
    from equip_mailer.store import open_store, utcnow

    address, problem = normalise_email(email.strip())
    if problem:
        raise EquipError(f"{email!r}: {problem}")
    cfg = settings()
    engine = open_store(cfg.database_url)
    with engine.begin() as conn:
        _not_erased(conn, cfg, address)
        known = _known_to_the_store(conn, address)
        change = set_level(conn, address, level, reason, _who(), utcnow())
        counted = _last_counted_at(conn, address)
    was = f" (was {change.previous_level})" if change.previous_level else ""
    console.print(f"{mask_email(address)} is now at {level}{was}.", markup=False)
    if counted is not None and level_rank(counted[1]) > level_rank(level):
        # Lowering takes effect only if the list agrees: check and send use the higher.
        console.print(
            f"Note: the last campaign ({counted[0]}) counted them at {counted[1]}, and check "
            "and send use the higher of this level and their list's: if their list says "
            f"{counted[1]}, change it there too, or the next campaign still treats them so.",
            markup=False,
            soft_wrap=True,
        )
    if not known:
        # Recorded anyway (the person may be on next quarter's list), but a typo should show.
        console.print(
            f"Note: no campaign sent so far and no sign-up names {mask_email(address)}; "
            "if the address is mistyped, set the level again with the right one.",
            markup=False,
            soft_wrap=True,
        )


def _last_counted_at(conn: Connection, address: str) -> tuple[str, str] | None:
    """(campaign id, QI level) of the newest campaign sent to the address, if any."""
    import sqlalchemy as sa

    from equip_mailer.store import ledger

    row = conn.execute(
        sa.select(ledger.c.campaign_id, ledger.c.qi_level)
        .where(ledger.c.email_key == address.strip().lower())
        .order_by(ledger.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None or not row.qi_level else (row.campaign_id, row.qi_level)


def _not_erased(conn: Connection, cfg: Settings, address: str) -> None:
    """Refuse to record anything more about an address ``forget`` erased: the store is not
    to hold it again (it stays suppressed as a keyed hash)."""
    from equip_mailer.config import mask_email
    from equip_mailer.people.records import erased_among

    secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None
    if secret is None:
        return
    _same_link_secret(conn, secret, cfg)
    if erased_among(conn, secret, [address]):
        raise EquipError(
            f"{mask_email(address)} was erased at their request (equip-mailer forget), so "
            "nothing more is recorded about them",
            hint="If they ask to take part again, they sign up afresh on a course's page.",
        )


def _known_to_the_store(conn: Connection, address: str) -> bool:
    """Whether any campaign's ledger or any sign-up names the address."""
    import sqlalchemy as sa

    from equip_mailer.store import ledger, registrations

    key = address.strip().lower()
    for table in (ledger, registrations):
        if conn.execute(sa.select(table.c.id).where(table.c.email_key == key).limit(1)).first():
            return True
    return False


def _address(email: str) -> str:
    from equip_mailer.compose.cell_values import normalise_email

    address, problem = normalise_email(email.strip())
    if problem:
        raise EquipError(f"{email!r}: {problem}")
    return address


def _same_link_secret(conn: Connection, secret: bytes, cfg: Settings) -> None:
    """Refuse a link secret other than the one the store's mail was signed with, as send
    does: an erasure is remembered as a hash under it, so under another secret forget's
    hash would not stop the next send, and export would not recognise who was erased."""
    from equip_mailer.store import identity

    identity.check(conn, secret, cfg.where("link_secret"))


def _project_folders(cfg: Settings) -> tuple[Project | None, list[Path]]:
    """The project (for its lists) and the folders whose files may name a person."""
    from equip_mailer.project import find_project

    project = cfg.project or find_project()
    root = project.root if project is not None else Path.cwd()
    return project, [root / "report", root / "rosters", root / "preview"]


@main.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Write everything as JSON (for a SAR).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON answer (as --json prints it) to this file.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@friendly_errors
def person(email: str, as_json: bool, out: Path | None, force: bool) -> None:
    """Show everything held about one address: the lists naming it, campaigns sent, what
    happened to them (deliveries, clicks), course places, attendance, QI level history,
    suppression and team access. --json writes it all for a subject access request.

    \b
    Example:
      equip-mailer person ann@nhs.example
      equip-mailer person ann@nhs.example --json --out sar-ann.json
    """
    import json

    from equip_mailer.people.person import gather
    from equip_mailer.store import open_store, utcnow

    address = _address(email)
    if out is not None and out.exists() and not force:  # an earlier request's answer, say
        raise EquipError(f"{out} exists already", hint="Choose another --out, or add --force.")
    cfg = settings()
    project, _folders = _project_folders(cfg)
    engine = open_store(cfg.database_url)
    secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None
    with engine.connect() as conn:
        found = gather(conn, address, project, secret)
    if as_json or out is not None:  # a file asked for is the JSON answer, never ignored
        text = json.dumps(found.as_json(utcnow()), indent=2, ensure_ascii=False, default=str)
        if out is None:
            click.echo(text)
        else:
            out.write_text(text + "\n", encoding="utf-8")
            console.print(f"Wrote {out}.", markup=False)
        return
    _print_person(found)


_LABELS = {"qi_level": "QI level", "ip_hash": "IP hash", "at": "when"}
# a section of `person` counted in words: (one, many)
_COUNTED = {
    "campaigns": ("campaign sent", "campaigns sent"),
    "events": ("email event", "email events"),
    "registrations": ("course sign-up", "course sign-ups"),
    "invites": ("open sign-up request", "open sign-up requests"),
    "notices": ("single email", "single emails"),
    "attendance": ("attendance mark", "attendance marks"),
    "levels": ("QI level change", "QI level changes"),
    "suppression": ("suppression", "suppressions"),
    "team": ("team page record", "team page records"),
}


def _counted(n: int, section: str) -> str:
    """``1 QI level change``, ``3 email events``: not "1 levels"."""
    one, many = _COUNTED.get(section, (section, section))
    return f"{n:,} {one if n == 1 else many}"


def _label(key: str) -> str:
    """A column's name as words ("sent_at" -> "sent at"); --json keeps the names."""
    return _LABELS.get(key, key.replace("_", " "))


def _shown(value: object) -> str:
    """Times to the minute, in UTC as stored; yes/no for flags."""
    import datetime as dt

    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        try:
            return f"{dt.datetime.fromisoformat(value):%Y-%m-%d %H:%M} UTC"
        except ValueError:
            return value
    return str(value)


def _print_person(found) -> None:
    from equip_mailer.people.person import SECTION_PURPOSES

    if found.erased_at is not None and not found.in_store:
        console.print(
            f"{found.email} was erased on {found.erased_at:%Y-%m-%d} (equip-mailer forget): "
            "the store keeps only a keyed hash of it, which stops any more mail to it, and "
            "counts that name nobody."
            + (
                " The mailing lists still name it (delete those rows there):" if found.lists else ""
            ),
            markup=False,
            soft_wrap=True,
        )
    elif not found.found:
        console.print(f"Nothing is held about {found.email}.", markup=False)
    elif not found.in_store:
        console.print(
            f"The store holds nothing about {found.email}; the mailing lists still name it "
            "(delete those rows there):",
            markup=False,
        )
    else:
        console.print(f"What is held about {found.email}:", markup=False)
    for section in found.SECTIONS:
        rows = getattr(found, section)
        if not rows:
            continue
        console.print(
            f"\n{section.capitalize()} ({len(rows)}): {SECTION_PURPOSES[section]}", markup=False
        )
        for row in rows[:200]:
            shown = ", ".join(
                f"{_label(k)}: {_shown(v)}"
                for k, v in row.items()
                if v not in (None, "", []) and k not in ("raw", "text", "history")
            )
            console.print(f"  {shown}", markup=False, soft_wrap=True)
        if len(rows) > 200:
            console.print(f"  … and {len(rows) - 200} more (--json has them all)", markup=False)
    for note in found.notes:
        console.print(f"Note: {note}", markup=False, soft_wrap=True)


@main.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask (for scripts): erase at once.")
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
    help="The outbox folder to clear (default: the outbox setting).",
)
@friendly_errors
def forget(email: str, yes: bool, outbox: Path | None) -> None:
    """Erase one person everywhere (a right-to-erasure request), after showing what will go.

    Their places on courses still to come are cancelled (the next person waiting gets the
    place); registrations, attendance and the campaign ledger keep only anonymous rows, so
    past reports count the same; level history, invites, single emails and team access are
    deleted; outbox, report, roster and preview files naming them are deleted. The address
    is kept only as a keyed hash, as a suppression, so an old list never mails it again.

    \b
    Example:
      equip-mailer forget ann@nhs.example
    """
    from equip_mailer.cli.common import confirmed
    from equip_mailer.config import mask_email
    from equip_mailer.people.forget import forget as erase
    from equip_mailer.people.person import gather
    from equip_mailer.signup.notify import MailLinks
    from equip_mailer.store import open_store, utcnow

    address = _address(email)
    cfg = settings()
    secret = cfg.require_link_secret()
    project, folders = _project_folders(cfg)
    engine = open_store(cfg.database_url)
    with engine.connect() as conn:
        _same_link_secret(conn, secret, cfg)
        found = gather(conn, address, project)
        at_sendgrid = _mailed_through_sendgrid(conn, address)
    held = {s: len(getattr(found, s)) for s in found.SECTIONS if s != "lists" and getattr(found, s)}
    masked = mask_email(address)
    console.print(
        f"Held about {masked}: "
        + (", ".join(_counted(n, s) for s, n in held.items()) or "nothing in the store")
        + ".",
        markup=False,
        soft_wrap=True,
    )
    if not yes and not confirmed(
        f"Erase {masked} everywhere? This cannot be undone.",
        refusal="forget needs confirmation and there is no terminal to ask on",
        hint="Add --yes to erase without asking.",
    ):
        console.print("Nothing was erased.", markup=False)
        return
    links = MailLinks(cfg.public_url, secret)
    done = erase(
        engine,
        address,
        secret,
        outbox=outbox or cfg.outbox,
        folders=folders,
        links=links,
        now=utcnow(),
    )
    _deliver_promotions(cfg, engine, outbox or cfg.outbox, done.promoted)
    console.print(f"Erased {masked}:", markup=False)
    _erase_at_sendgrid(cfg, engine, address, at_sendgrid)
    for what, n in done.counts.items():
        console.print(f"  {n:,} {what}", markup=False)
    for name in done.cancelled:
        console.print(f"  place on {name} cancelled", markup=False)
    if done.promoted:
        console.print(
            f"  {done.promoted} person(s) on the waiting list got the place and were emailed",
            markup=False,
        )
    for path in done.files:
        console.print(f"  deleted {path}", markup=False, soft_wrap=True)
    if not (done.counts or done.cancelled or done.files):
        console.print(
            "  nothing was held in the store; from now on the address is kept only as a keyed "
            "hash, which stops any mail to it",
            markup=False,
            soft_wrap=True,
        )
    if any(p.suffix.lower() != ".eml" for p in done.files):
        console.print(
            "Make deleted reports or rosters again with `equip-mailer report` / `roster`: "
            "the new ones count the person without naming them.",
            markup=False,
            soft_wrap=True,
        )
    for row in found.lists:
        console.print(
            f"Still in the mailing list {row['where']}: delete that row there (until then "
            "the keyed hash stops any mail to it).",
            markup=False,
            soft_wrap=True,
        )
    _other_list_files(project, address, [row["where"] for row in found.lists])
    for note in done.notes:
        console.print(f"Note: {note}", markup=False, soft_wrap=True)


def _other_list_files(project: Project | None, address: str, listed: list[str]) -> None:
    """Files in lists/ no spec reads that still name the person (an exported master list,
    last year's list): named for the team to edit, since the tool never changes lists/."""
    from equip_mailer.people.forget import files_naming

    if project is None:
        return
    for path in files_naming(project.root / "lists", address):
        shown = path.relative_to(project.root).as_posix()
        if any(w.startswith(shown) and w[len(shown) : len(shown) + 1] in ":[ " for w in listed):
            continue  # a list a spec reads: named above, row by row
        console.print(f"Also named in {shown}: delete them there.", markup=False, soft_wrap=True)


def _deliver_promotions(cfg, engine, outbox: Path, promoted: int) -> None:
    """Mail the people who got a place the erased person gave up (as send does)."""
    if not promoted:
        return
    from equip_mailer.send.notice_transports import notice_transport
    from equip_mailer.send.notices import NoticeSender

    NoticeSender(engine, notice_transport(cfg, outbox)).deliver_pending()


@main.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@friendly_errors
def purge(dry_run: bool) -> None:
    """Remove what is past the retention limit (EQUIP_RETENTION_DAYS, default 400 days):
    raw webhook payloads, user agents and IP hashes of email events, open sign-up invites,
    and the text of single emails sent (with their outbox files); and the hash of the
    address that recognises a repeated SendGrid event, once those are gone and SendGrid
    can no longer repeat it. Counts stay. `serve` runs this daily by itself.

    \b
    Example:
      equip-mailer purge --dry-run
      equip-mailer purge
    """
    from equip_mailer.people.retention import purge as run_purge
    from equip_mailer.store import open_store

    cfg = settings()
    done = run_purge(
        open_store(cfg.database_url), cfg.retention_days, outbox=cfg.outbox, dry_run=dry_run
    )
    lost, were, keep = (
        ("would lose", "would be removed", "would no longer keep")
        if dry_run
        else ("lost", "were removed", "no longer keep")
    )
    console.print(
        f"{'Would purge' if dry_run else 'Purged'} what is older than {done.cutoff:%Y-%m-%d} "
        f"({cfg.retention_days} days): {done.events:,} email events {lost} their raw "
        f"payload, user agent and IP hash; {done.invites:,} open sign-up invites and "
        f"{done.notices:,} sent emails' texts {were}, with {done.files:,} outbox files; "
        f"{done.keys:,} email events {keep} a hash of the address (SendGrid can no longer "
        "send them again).",
        markup=False,
        soft_wrap=True,
    )
    if dry_run:
        console.print("Nothing was changed (--dry-run).", markup=False)


def _mailed_through_sendgrid(conn: Connection, address: str) -> bool:
    """Whether any newsletter or single email to ``address`` went through SendGrid (read
    before the erasure, while the rows still name them)."""
    import sqlalchemy as sa

    from equip_mailer.store import batches, ledger, notices

    key = address.strip().lower()
    newsletter = conn.execute(
        sa.select(ledger.c.id)
        .join(batches, batches.c.id == ledger.c.batch_id)
        .where(ledger.c.email_key == key, batches.c.backend == "sendgrid")
        .limit(1)
    ).first()
    single = conn.execute(
        sa.select(notices.c.id)
        .where(notices.c.email_key == key, notices.c.backend == "sendgrid")
        .limit(1)
    ).first()
    return newsletter is not None or single is not None


def _erase_at_sendgrid(cfg: Settings, engine: Engine, address: str, mailed: bool) -> None:
    """SendGrid's own copy goes too: its recipient erasure job, filed and logged by its id
    (track/provider_erasure.py). A refusal is a note saying how to do it by hand; so is a
    missing API key when their mail went through SendGrid, since the erasure is then not
    complete."""
    from equip_mailer.errors import DeliveryError
    from equip_mailer.track.provider_erasure import SendGridErasure, file_erasure

    if not cfg.sendgrid_api_key:
        if mailed:
            console.print(
                "Note: their mail went through SendGrid, which keeps its own copy of the "
                "address; SENDGRID_API_KEY is not set, so no erasure job was filed there. "
                "To finish, set SENDGRID_API_KEY and run forget again (it files the job), or "
                "file it by hand in SendGrid (Settings > Privacy > Erase recipient data).",
                markup=False,
                soft_wrap=True,
            )
        return
    erasure = SendGridErasure(
        cfg.sendgrid_api_key, host=cfg.sendgrid_api_host, timeout=cfg.sendgrid_timeout
    )
    try:
        with engine.begin() as conn:
            job_id = file_erasure(conn, erasure, address)
    except DeliveryError as exc:
        console.print(f"Note: {exc.message}. {exc.hint or ''}", markup=False, soft_wrap=True)
        return
    console.print(
        f"  SendGrid erasure job {job_id} filed (its id is in the audit log)", markup=False
    )
