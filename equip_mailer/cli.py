"""The ``equip-mailer`` command: thin click commands over the library.

Every expected failure is an EquipError, printed as one plain sentence (plus a hint), never
a traceback. Real work lives in the modules named in each command.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from .config import load_settings
from .errors import EquipError

# emoji=False: "lists/x.csv:100:" must not print as an emoji
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)


def friendly_errors(fn):
    """Turn EquipError (and a few OS errors) into a plain message and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EquipError as exc:
            err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
            if exc.hint:
                err_console.print(f"Hint: {exc.hint}", soft_wrap=True)
            sys.exit(1)
        except PermissionError as exc:
            err_console.print(f"Error: permission denied: {exc.filename}")
            sys.exit(1)
        except KeyboardInterrupt:
            err_console.print("Stopped. Run the same command again to carry on.")
            sys.exit(130)
    return wrapper


campaign_arg = click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
allow_past_opt = click.option("--allow-past", is_flag=True,
                              help="Accept sessions dated before today (needed for the 2019 demo).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="equip-mailer")
def main() -> None:
    """EQUIP course-menu newsletters: check, preview, send, track and report.

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
    """


def settings():
    return load_settings()


# --- check ---

def _store_suppressions(database_url: str) -> tuple[set[str], str | None]:
    """The store's suppressed addresses, read without creating or migrating anything.

    Returns (keys, note): a check must not leave a database file behind, so a SQLite file
    that does not exist yet simply means "no suppressions recorded".
    """
    import sqlalchemy as sa

    from .store import make_engine, suppressed_keys

    try:
        url = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError:
        return set(), "EQUIP_DATABASE_URL is not a database URL; store suppressions not read"
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).exists():
            return set(), None
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("suppressions"):
                return set(), None
            return suppressed_keys(conn), None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return set(), f"could not read suppressions from the database ({reason})"
    finally:
        engine.dispose()


def _check_templates(campaign) -> tuple[dict, str | None]:
    """Render every segment once: ({segment id: rendered}, note when the renderer is missing)."""
    try:
        from .render import render_campaign
    except ImportError:
        return {}, "templates not checked: the renderer (equip_mailer.render) is not available"
    return render_campaign(campaign), None          # RenderError names the template line


@main.command()
@campaign_arg
@allow_past_opt
@friendly_errors
def check(campaign: Path, allow_past: bool) -> None:
    """Check a campaign without sending anything: spec, mailing lists and templates.

    Prints each segment with its number of recipients, the totals, and then every rejected
    row as file:line: problem. Exits with status 1 when the campaign file has problems
    (all are listed, one per line), a list cannot be read, or a list has more bad rows than
    lists.max_reject_share allows.

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
    """
    from rich.table import Table

    from .audience import load_audience
    from .errors import SpecError
    from .spec import load_campaign

    try:
        spec = load_campaign(campaign, allow_past=allow_past)
    except SpecError as exc:
        for problem in exc.problems:
            err_console.print(problem, markup=False, highlight=False, soft_wrap=True)
        count = len(exc.problems)
        err_console.print(f"{count} problem{'s' if count != 1 else ''} in {campaign}; nothing was checked further.",
                          markup=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"Hint: {exc.hint}", markup=False, soft_wrap=True)
        sys.exit(1)

    keys, store_note = _store_suppressions(settings().database_url)
    audience = load_audience(spec, suppressed=keys)
    rendered, template_note = _check_templates(spec)

    table = Table(title=f"{spec.id}: {spec.title}", title_justify="left")
    table.add_column("Segment", no_wrap=True)
    table.add_column("Name")
    table.add_column("QI levels")
    table.add_column("Recipients", justify="right")
    table.add_column("Subject", overflow="fold")
    for segment in spec.segments:
        levels = ", ".join(segment.qi_levels)
        subject = rendered[segment.id].subject if segment.id in rendered else (segment.subject or spec.subject)
        table.add_row(segment.id, segment.name, levels, f"{len(audience.by_segment[segment.id]):,}",
                      subject)
    total = len(audience.recipients)
    table.add_row("", "Total", "", f"{total:,}", "", end_section=True)
    console.print(table)
    console.print(f"Rows read {audience.rows_read:,} · rejected {len(audience.rejects):,} · "
                  f"duplicates {audience.duplicates:,} · suppressed {audience.suppressed:,} "
                  f"({len(keys):,} from the database) · recipients {total:,}",
                  markup=False, soft_wrap=True)
    for note in (store_note, template_note):
        if note:
            console.print(f"Note: {note}", markup=False, soft_wrap=True)
    if template_note is None:
        console.print("Templates: every segment renders.", markup=False)
    if audience.rejects:
        console.print(f"\nRejected rows ({len(audience.rejects):,}; they will not be mailed):",
                      markup=False)
        for reject in audience.rejects:
            console.print(str(reject), markup=False, highlight=False, soft_wrap=True)
    if audience.duplicate_rows:
        console.print(f"\nDuplicate rows ({audience.duplicates:,}; the first row is kept):", markup=False)
        for note in audience.duplicate_rows:
            console.print(str(note), markup=False, highlight=False, soft_wrap=True)
    if total == 0:
        raise EquipError("no one would get this newsletter: every list is empty after checks",
                         hint="Check the files under 'lists:' in the campaign.")


# --- serve ---

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS proxy in front for the public URL).")
@click.option("--port", default=8025, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@friendly_errors
def serve(host: str, port: int) -> None:
    """Run the tracking service: click redirects, unsubscribe, SendGrid's event webhook.

    Serves /c/<token> (tracked links), /u/<token> (unsubscribe), /webhooks/sendgrid and
    /healthz from EQUIP_DATABASE_URL, creating or migrating the store first. Set
    EQUIP_LINK_SECRET (the key the links were signed with) and SENDGRID_WEBHOOK_PUBLIC_KEY
    (without it the webhook refuses every post).

    \b
    Example:
      EQUIP_PUBLIC_URL=https://equip.example.org equip-mailer serve --port 8025
    """
    import logging

    import uvicorn

    from .tracking import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = settings()
    app = create_app(cfg)               # ConfigError/StoreError -> one plain sentence
    console.print(f"Tracking service on http://{host}:{port} (database "
                  f"{_masked_db_url(cfg.database_url)}); Ctrl+C stops it.", markup=False)
    # One worker: the app object is built here, and SQLite wants a single writer process.
    uvicorn.run(app, host=host, port=port, workers=1, log_level="info", access_log=False,
                proxy_headers=True)


def _masked_db_url(url: str) -> str:
    import sqlalchemy as sa
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(invalid URL)"
