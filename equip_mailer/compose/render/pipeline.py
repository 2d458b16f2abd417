"""The render step end to end: one campaign in, one ``RenderedSegment`` per segment out.

Rendering is done once per *segment*, never per recipient: Jinja fills the course-menu
template (``templates``, from the ``views``), MJML turns it into HTML (``mjml_compile``),
premailer inlines the card styles (``css_inlining``) and a second template writes the
plain-text part. What differs from reader to reader stays a token (``tokens``), filled in
at send time (``personalisation``). A token the renderer did not make is refused here, so a
template cannot smuggle one past the personalisation step.
"""

from __future__ import annotations

import re

import jinja2

from equip_mailer.errors import RenderError

from ..campaign import Campaign, Segment
from .css_inlining import inline_blocks, inline_css
from .mail_links import LinkBook
from .mjml_compile import compile_mjml
from .personalisation import RenderedSegment
from .templates import environments, load_template, locate, render_template, traced_render
from .tokens import PLACEHOLDERS, html_token, link_token_name, text_token
from .views import PAGES_URL, template_context, text_context


def render_mjml(campaign: Campaign, segment_id: str, *, pages_url: str = PAGES_URL) -> str:
    """The Jinja step alone: the MJML source of one segment (for validators and debugging)."""
    html_env, _ = environments(campaign.path("templates"))
    template = load_template(campaign, html_env, f"{campaign.template}.mjml.j2")
    ctx = template_context(campaign, _segment(campaign, segment_id), LinkBook(), pages_url)
    return render_template(campaign, template, ctx)


def _segment(campaign: Campaign, segment_id: str) -> Segment:
    try:
        return campaign.segment(segment_id)
    except KeyError:
        known = ", ".join(s.id for s in campaign.segments)
        raise RenderError(
            f"there is no segment {segment_id!r}; the segments are {known}",
            where=campaign.shown_source,
        ) from None


def render_campaign(
    campaign: Campaign, segments: list[str] | None = None, *, pages_url: str = PAGES_URL
) -> dict[str, RenderedSegment]:
    """Render each segment's email once (all segments, or the ones named). ``pages_url`` is
    where the tracking service's sign-up pages are (``EQUIP_PUBLIC_URL``)."""
    folder = campaign.path("templates")
    if not folder.is_dir():
        raise RenderError(
            "no templates folder",
            where=campaign.shown(folder),
            hint="Run from the project folder, or keep templates/ next to campaigns/.",
        )
    html_env, text_env = environments(folder)
    html_template = load_template(campaign, html_env, f"{campaign.template}.mjml.j2")
    text_template = load_template(campaign, text_env, f"{campaign.template}.txt.j2")
    wanted = [_segment(campaign, s) for s in segments] if segments else list(campaign.segments)
    return {
        s.id: _render_segment(campaign, s, html_template, text_template, pages_url) for s in wanted
    }


def _render_segment(
    campaign: Campaign,
    segment: Segment,
    html_template: jinja2.Template,
    text_template: jinja2.Template,
    pages_url: str,
) -> RenderedSegment:
    book = LinkBook()
    ctx = template_context(campaign, segment, book, pages_url)
    source = render_template(campaign, html_template, ctx)
    template_file = campaign.shown(html_template.filename or html_template.name or "")

    def template_position(offset: int) -> str:
        # Only on failure: render again, noting which template line wrote what.
        traced, chunks = traced_render(
            html_template, template_context(campaign, segment, LinkBook(), pages_url)
        )
        if traced != source:
            return template_file
        return locate(campaign, traced, chunks, offset)

    compiled = compile_mjml(source, template_position)
    html = inline_css(compiled, inline_blocks(source))
    plain = text_context(ctx)
    text = _tidy_text(render_template(campaign, text_template, plain))
    rendered = RenderedSegment(
        segment_id=segment.id,
        subject=plain["subject"],  # with text-part tokens: SendGrid substitutes them there too
        preheader=plain["preheader"],
        html=html,
        text=text,
        links=tuple(book.specs),
    )
    _refuse_strays(rendered, len(book.specs), template_file)
    return rendered


def _refuse_strays(rendered: RenderedSegment, n_links: int, template_file: str) -> None:
    """A RenderError if the email holds a token the renderer did not make (one a template
    wrote, say): nothing would fill it, and the reader would see it as it is."""
    known = {html_token(n) for n in (*PLACEHOLDERS, "unsubscribe")} | {
        text_token(n) for n in (*PLACEHOLDERS, "unsubscribe")
    }
    known |= {f(link_token_name(i)) for i in range(n_links) for f in (html_token, text_token)}
    strays = sorted(rendered.tokens - known)
    if strays:
        raise RenderError(
            f"the email contains token(s) the renderer did not make: {', '.join(strays)}",
            where=template_file,
        )


def _tidy_text(text: str) -> str:
    """Trailing spaces and runs of blank lines gone, except the space of the signature
    separator line "-- " (RFC 3676), by which mail clients recognise and fold the footer."""
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    out = "\n".join(lines).strip("\n")
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out + "\n"
