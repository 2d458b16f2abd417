"""The Jinja step: the templates folder's environments, and errors that name a template line.

Templates are compiled once per folder content and reused (compiling costs more than
rendering a segment). Whatever goes wrong inside a template (syntax, an undefined name, a
missing include) becomes a RenderError at ``templates/<file>:line``. MJML reports its
errors as offsets in the *rendered* text, which nobody wrote by hand, so ``traced_render``
renders again noting which template line wrote each piece, and ``locate`` maps an offset
back to ``templates/<file>:line:column``.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from equip_mailer.errors import RenderError

from ..campaign import Campaign
from ..text_files import not_utf8, place
from .markdown import wrap
from .views import TemplateContext


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".mjml.j2", ".html.j2", ".mjml", ".html"))


def environments(folder: Path) -> tuple[jinja2.Environment, jinja2.Environment]:
    """The folder's two environments, reused while its files are byte for byte the same:
    compiling the templates costs more than rendering a segment with them."""
    return _cached_environments(str(folder), _folder_digest(folder))


def _folder_digest(folder: Path) -> str:
    """Hash of every file's name and content (content, not mtime: mtimes can repeat)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            digest.update(f"{os.path.relpath(path, folder)}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


class _Loader(jinja2.FileSystemLoader):
    """The templates folder; a template saved as ANSI/Windows-1252 (or UTF-16) is a
    RenderError naming that file and line, rather than a UnicodeDecodeError from deep in
    Jinja (a crash when it is the main template, the including line when it is a part)."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError:
            line, problem = not_utf8(Path(self.searchpath[0]) / template)
            raise RenderError(problem, where=place(f"templates/{template}", line)) from None


@functools.lru_cache(maxsize=8)
def _cached_environments(
    folder: str, _digest: str
) -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = _Loader(folder)
    # No trim_blocks for MJML: whitespace is insignificant there, and keeping every template
    # line intact lets an MJML error be traced back to its template line.
    html_env = jinja2.Environment(
        loader=loader,
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    text_env = jinja2.Environment(
        loader=loader,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    for env in (html_env, text_env):
        env.filters["wrap"] = wrap
    return html_env, text_env


def _jinja_error(campaign: Campaign, exc: Exception, name: str) -> RenderError:
    """Point at the template line of a Jinja failure (syntax, undefined name, bad include)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        at = f"{campaign.shown(exc.filename or name)}:{exc.lineno}"
        return RenderError(f"template syntax: {exc.message}", where=at)
    where: str | None = None  # the innermost template line in the traceback
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".j2", ".mjml", ".html", ".txt")):
            where = f"{campaign.shown(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(
            f"includes {exc.name!r}, which is not in the templates folder",
            where=where or campaign.shown(campaign.path("templates") / name),
        )
    if isinstance(exc, jinja2.UndefinedError):
        message = exc.message or "undefined value"
        return RenderError(
            f"{message} (the template uses a name the renderer does not provide)",
            where=where or name,
        )
    return RenderError(f"{type(exc).__name__}: {exc}", where=where or name)


def load_template(campaign: Campaign, env: jinja2.Environment, name: str) -> jinja2.Template:
    """The template ``name`` from the campaign's templates folder, or a RenderError naming it."""
    folder = campaign.path("templates")
    if not (folder / name).is_file():
        raise RenderError(
            f"no template {name!r} (the campaign's template is {campaign.template!r})",
            where=campaign.shown(folder / name),
            hint="Set 'template:' in the campaign to a name in templates/, e.g. course-menu.",
        )
    try:
        return env.get_template(name)
    except jinja2.TemplateError as exc:
        raise _jinja_error(campaign, exc, name) from None


def render_template(campaign: Campaign, template: jinja2.Template, ctx: TemplateContext) -> str:
    """``template`` filled in; any failure inside it is a RenderError at its template line."""
    try:
        return template.render(ctx)
    except RenderError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside a template is the template's
        raise _jinja_error(campaign, exc, template.name or campaign.template) from None


# ---------------------------------------------------------------------------------------
# Tracing rendered MJML back to template lines


@dataclass(frozen=True)
class Chunk:
    """A piece of rendered output and the template line that wrote it."""

    start: int  # offset in the rendered text
    filename: str  # template file that produced it
    line: int  # template line where it starts


def traced_render(template: jinja2.Template, ctx: TemplateContext) -> tuple[str, list[Chunk]]:
    """Render while noting which template line produced each piece of output.

    Jinja's compiled templates are generators; after each yield the innermost suspended
    generator (an include runs as a generator held in the local ``gen``) sits on a code
    line that Jinja's debug info maps to a template line.
    """
    env = template.environment
    by_file: dict[str, jinja2.Template] = {}
    for name in env.list_templates():
        try:
            loaded = env.get_template(name)
        except jinja2.TemplateError:
            continue
        if loaded.filename:
            by_file[loaded.filename] = loaded
    root = template.root_render_func(template.new_context(dict(ctx)))
    if not isinstance(root, types.GeneratorType):  # what Jinja compiles; nothing to trace else
        return "".join(root), []
    pieces: list[str] = []
    chunks: list[Chunk] = []
    pos = 0
    for piece in root:
        gen = root
        while True:
            inner = gen.gi_frame.f_locals.get("gen") if gen.gi_frame else None
            if (
                isinstance(inner, types.GeneratorType)
                and inner is not gen
                and inner.gi_frame is not None
            ):
                gen = inner
            else:
                break
        filename = gen.gi_code.co_filename
        code_line = gen.gi_frame.f_lineno if gen.gi_frame else 1
        source = by_file.get(filename)
        line = source.get_corresponding_lineno(code_line) if source else 1
        chunks.append(Chunk(start=pos, filename=filename, line=line))
        pieces.append(piece)
        pos += len(piece)
    return "".join(pieces), chunks


def locate(campaign: Campaign, rendered: str, chunks: list[Chunk], offset: int) -> str:
    """``templates/<file>:line:column`` of a position in the rendered MJML."""
    if not chunks:
        return f"rendered MJML:{rendered.count(chr(10), 0, offset) + 1}"
    i = max(bisect.bisect_right([c.start for c in chunks], offset) - 1, 0)
    chunk = chunks[i]
    before = rendered[chunk.start : offset]
    line = chunk.line + before.count("\n")
    line_start = rendered.rfind("\n", 0, offset) + 1
    column = offset - line_start + 1
    try:
        source_lines = Path(chunk.filename).read_text(encoding="utf-8").splitlines()
    except OSError:
        source_lines = []
    # Constant text is attributed to the node before it, so the estimate can be a few lines
    # early: confirm it against the source, taking the match nearest the estimate and
    # shortening the probe until it no longer reaches into interpolated values.
    line_end = rendered.find("\n", offset)
    rest_of_line = rendered[offset : line_end if line_end >= 0 else len(rendered)]
    for size in (40, 20, 10, 5):
        probe = rest_of_line[:size]
        if not probe.strip() or not source_lines:
            break
        hits = [
            (abs(n - line), n, text.find(probe))
            for n, text in enumerate(source_lines, 1)
            if probe in text
        ]
        if hits:
            _, line, found = min(hits)
            column = found + 1
            break
    return f"{campaign.shown(chunk.filename)}:{line}:{column}"
