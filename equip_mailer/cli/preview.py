"""``equip-mailer preview``: each segment's email written to files as a reader will see it,
personalised for a real first reader, with untracked links; nothing is sent or recorded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from equip_mailer.cli.common import (
    allow_past_opt,
    campaign_arg,
    console,
    friendly_errors,
    main,
    not_a_folder,
    settings,
)
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from equip_mailer.compose.audience import Recipient
    from equip_mailer.compose.campaign import Campaign, Segment
    from equip_mailer.compose.render.personalisation import RenderedSegment


@main.command()
@campaign_arg
@allow_past_opt
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the previews to [default: preview/ in the project folder].",
)
@click.option(
    "--segment",
    "segment_ids",
    multiple=True,
    metavar="SEGMENT",
    help="Only this segment (repeat for more). Default: every segment.",
)
@friendly_errors
def preview(
    campaign: Path, allow_past: bool, out_dir: Path | None, segment_ids: tuple[str, ...]
) -> None:
    """Write each segment's email as it will look, to open in a browser or text editor.

    Writes OUT/<segment>.html and OUT/<segment>.txt, personalised for the first reader of
    that segment on the lists (or a sample reader, Sam Example, when a segment is empty).
    Links go straight to their pages, without tracking; nothing is sent or recorded.
    The previews an earlier run wrote for a segment the campaign no longer has are removed
    (OUT/.previews.json remembers which files each campaign's previews wrote).

    \b
    Example:
      equip-mailer preview campaigns/2019-04-equip-training.yaml --allow-past
      equip-mailer preview campaigns/2019-04-equip-training.yaml --allow-past --segment project-leads
    """  # noqa: E501 - an example command line, kept whole for copying
    from equip_mailer.compose.render.pipeline import render_campaign
    from equip_mailer.compose.spec import load_campaign

    cfg = settings(campaign)
    spec = load_campaign(campaign, allow_past=allow_past)
    pages_url = cfg.public_url
    if out_dir is None:
        out_dir = cfg.project.path("preview") if cfg.project else Path("preview")
    rendered = render_campaign(spec, list(segment_ids) or None, pages_url=pages_url)
    readers, note = _sample_recipients(spec)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise not_a_folder(out_dir) from None
    used_sample = []
    written: list[Path] = []
    for segment_id, segment_mail in rendered.items():
        reader = readers.get(segment_id)
        if reader is None:
            reader = _fake_reader(spec.segment(segment_id))
            used_sample.append(segment_id)
        for path in _write_preview(out_dir, segment_id, segment_mail, reader):
            console.print(str(path), markup=False, soft_wrap=True)
            written.append(path)
    for old in _keep_track(out_dir, spec.id, written, every_segment=not segment_ids):
        console.print(
            f"Removed {old}: an earlier preview of a segment this campaign no longer has.",
            markup=False,
            soft_wrap=True,
        )
    if note:
        console.print(f"Note: {note}.", markup=False, soft_wrap=True)
    elif used_sample:
        console.print(
            f"Note: no one on the lists in {', '.join(used_sample)}; shown for a sample "
            "reader, Sam Example.",
            markup=False,
            soft_wrap=True,
        )
    console.print(
        "Links go straight to their pages (no tracking) and the unsubscribe link is a "
        "placeholder. Nothing was sent.",
        markup=False,
        soft_wrap=True,
    )


MANIFEST = ".previews.json"  # which files in the folder each campaign's previews wrote


def _keep_track(out_dir: Path, campaign_id: str, written: list[Path], every_segment: bool):
    """Record the files this preview wrote and, after a preview of every segment, delete
    those an earlier one wrote for this campaign that were not written again (a segment
    renamed or taken out): left there, they would be opened as this campaign's mail. Only
    files this command wrote are ever deleted. Returns the deleted paths."""
    import json

    manifest = out_dir / MANIFEST
    try:
        known: dict[str, list[str]] = json.loads(manifest.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    names = [p.name for p in written]
    for other, files in known.items():  # a file now holds this campaign's preview
        known[other] = [f for f in files if f not in names or other == campaign_id]
    earlier = known.get(campaign_id, [])
    removed = []
    if every_segment:
        for name in earlier:
            stale = out_dir / name
            if name not in names and Path(name).name == name and stale.is_file():
                stale.unlink()
                removed.append(stale)
        known[campaign_id] = names
    else:
        known[campaign_id] = list(dict.fromkeys(earlier + names))
    manifest.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
    return removed


def _write_preview(
    out_dir: Path, segment_id: str, segment_mail: RenderedSegment, reader: Recipient
) -> list[Path]:
    """OUT/<segment>.html and OUT/<segment>.txt for one reader, links untracked."""
    from equip_mailer.compose.render.personalisation import personalise, recipient_values

    values = recipient_values(
        segment_mail,
        reader,
        {link.key: link.url for link in segment_mail.links},
        "#unsubscribe-preview",
    )
    html, text = personalise(segment_mail, values)
    html_path, text_path = out_dir / f"{segment_id}.html", out_dir / f"{segment_id}.txt"
    html_path.write_text(html, encoding="utf-8")
    text_path.write_text(text, encoding="utf-8")
    return [html_path, text_path]


def _sample_recipients(spec: Campaign) -> tuple[dict[str, Recipient], str | None]:
    """First recipient of each segment from the lists: (segment id -> Recipient, note).

    Previews are about how the email looks, so an unreadable or unfinished audience module
    falls back to a clearly fake reader instead of stopping; the note says why.
    """
    try:
        from equip_mailer.compose.audience import load_audience

        audience = load_audience(spec)
    except (ImportError, NotImplementedError) as exc:
        return {}, f"mailing lists not read ({exc}); using a sample reader"
    except EquipError as exc:
        return {}, f"mailing lists not read ({exc}); using a sample reader"
    return {sid: people[0] for sid, people in audience.by_segment.items() if people}, None


def _fake_reader(segment: Segment) -> Recipient:
    from equip_mailer.compose.audience import Recipient
    from equip_mailer.compose.menu import reader_level

    return Recipient(
        email="sam.example@example.org",
        first_name="Sam",
        last_name="Example",
        practice="Example Practice",
        role="Practice manager",
        qi_level=reader_level(segment),
        source="sample reader",
    )
