"""The CSS step: inline the card styles into ``style`` attributes, as mail clients need.

premailer does it, with three traps defused: it would fetch remote stylesheets and
``@import`` targets (cssutils does even with ``allow_network=False``), drop the doctype
mjml writes in lower case, and strip ``!important`` from the responsive media queries.
Only ``<mj-style inline="inline">`` blocks are inlined, like MJML's own juice step.
"""

from __future__ import annotations

import logging
import re

import cssutils
from lxml import etree
from premailer import Premailer

from equip_mailer.errors import RenderError


def _refuse_fetch(url: str) -> None:
    """cssutils fetcher for @import: never go to the network while building an email."""
    return None


class _OfflinePremailer(Premailer):
    """premailer whose CSS parser cannot fetch ``@import`` targets (cssutils would, by default,
    even with ``allow_network=False``)."""

    def _parse_css_string(self, css_body: str, validate: bool = True) -> cssutils.css.CSSStyleSheet:
        return cssutils.CSSParser(fetcher=_refuse_fetch, validate=validate).parseString(css_body)


_DOCTYPE_RE = re.compile(r"^\s*<!doctype\s+html\s*>", re.IGNORECASE)
_STYLE_OPEN_RE = re.compile(r"<style\b([^>]*)>(.*?)</style>", re.IGNORECASE | re.DOTALL)
_INLINE_STYLE_RE = re.compile(
    r"<mj-style\b[^>]*\binline\s*=\s*[\"']inline[\"'][^>]*>(.*?)</mj-style>",
    re.IGNORECASE | re.DOTALL,
)


def inline_blocks(mjml_source: str) -> list[str]:
    """The CSS of each ``<mj-style inline="inline">`` block of an MJML source, for
    ``inline_css``: mjml-python keeps those blocks in the head instead of inlining them."""
    return [m.group(1) for m in _INLINE_STYLE_RE.finditer(mjml_source)]


def _normalised(css: str) -> str:
    return " ".join(css.split())


def inline_css(html: str, inline: list[str] | tuple[str, ...] = ()) -> str:
    """Inline the CSS of ``<mj-style inline="inline">`` blocks into ``style`` attributes.

    Only those blocks are inlined, like MJML's own juice step: mjml's head styles (resets,
    responsive media queries, Outlook fixes) are left exactly as written, ``!important``
    included, by marking them for premailer to ignore. No stylesheet or ``@import`` is
    ever fetched, and the doctype mjml writes in lower case is kept.
    """
    wanted = {_normalised(css) for css in inline if css.strip()}

    def mark(m: re.Match[str]) -> str:
        attrs, body = m.group(1), m.group(2)
        if _normalised(body) in wanted and "data-premailer" not in attrs:
            return m.group(0)
        if "data-premailer" in attrs:
            return m.group(0)
        return f'<style data-premailer="ignore"{attrs}>{body}</style>'

    had_doctype = bool(_DOCTYPE_RE.match(html))
    prepared = _DOCTYPE_RE.sub("<!DOCTYPE html>", html, count=1)
    prepared = _STYLE_OPEN_RE.sub(mark, prepared)
    premailer = _OfflinePremailer(
        allow_network=False,  # no <link rel=stylesheet> downloads
        allow_loading_external_files=False,
        keep_style_tags=False,  # the inlined block itself goes; the ignored ones stay
        strip_important=False,
        remove_classes=False,
        disable_validation=True,  # mso-* and -webkit-* properties are fine in email
        disable_link_rewrites=True,
        cache_css_parsing=False,
        cssutils_logging_level=logging.CRITICAL,
    )
    try:
        out = premailer.transform(prepared, pretty_print=False)
    except (etree.LxmlError, ValueError) as exc:
        raise RenderError(f"premailer could not inline the CSS: {exc}") from None
    # premailer drops the marker only from the tags it looked at (not from those inside
    # Outlook's conditional comments or with a media attribute).
    out = out.replace(' data-premailer="ignore"', "")
    if had_doctype and not _DOCTYPE_RE.match(out):
        out = "<!DOCTYPE html>\n" + out
    return out
