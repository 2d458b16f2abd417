"""Rendering the course menu: what each segment's reader sees, and the traps on the way.

Each segment is rendered once; readers differ only at tokens, filled in by personalise.
Variants of the demo campaign are real files in tmp_path (a campaigns/ and templates/ copy).
"""

from __future__ import annotations

import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from equip_mailer.compose.audience import Recipient
from equip_mailer.compose.render import (
    PALETTE,
    RenderedSegment,
    compile_mjml,
    inline_css,
    personalise,
    recipient_values,
    render_campaign,
    wrap,
)
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import RenderError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    return load_campaign(ROOT / "campaigns" / "2019-04-equip-training.yaml", allow_past=True)


@pytest.fixture(scope="module")
def rendered(demo) -> dict[str, RenderedSegment]:
    return render_campaign(demo)


def make_project(tmp_path: Path, change=None, templates=None) -> Path:
    """A copy of the demo project: the spec edited by ``change(dict)``, templates by
    ``templates(folder)``. Returns the spec's path."""
    spec = yaml.safe_load(
        (ROOT / "campaigns" / "2019-04-equip-training.yaml").read_text(encoding="utf-8")
    )
    if change:
        change(spec)
    (tmp_path / "campaigns").mkdir()
    path = tmp_path / "campaigns" / "variant.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    if templates:
        templates(tmp_path / "templates")
    return path


def edit_template(folder: Path, name: str, old: str, new: str) -> int:
    """Replace ``old`` (once) in a template; return the 1-based line where ``new`` starts."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"{old!r} not in {name}"
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")
    return text[:at].count("\n") + 1


def reader(**overrides) -> Recipient:
    values = dict(
        email="ann.example@example.org",
        first_name="Ann",
        last_name="Example",
        practice="Example Practice",
        role="Practice nurse",
        qi_level="none",
        source="lists/practice-staff.csv:2",
    )
    values.update(overrides)
    return Recipient(**values)


def plain_urls(mail: RenderedSegment) -> dict[str, str]:
    return {link.key: link.url for link in mail.links}


def section(text: str, start: str, end: str | None) -> str:
    """The part of ``text`` from heading ``start`` to heading ``end``."""
    a = text.index(start)
    b = text.index(end, a) if end else len(text)
    return text[a:b]


# ---------------------------------------------------------------------------------------
# What each segment gets


def test_every_segment_gets_a_complete_email_with_its_own_subject(demo, rendered):
    assert list(rendered) == ["getting-started", "ready-for-action", "project-leads"]
    mail = rendered["getting-started"]
    assert mail.subject == "EQUIP Basics: start your QI journey this summer"
    assert mail.preheader == demo.preheader
    assert mail.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en-GB"' in mail.html
    assert "<title>EQUIP Basics: start your QI journey this summer</title>" in mail.html
    assert demo.preheader in mail.html  # the hidden preheader (mj-preview)
    assert "<h1" in mail.html and "<h2" in mail.html and "<h3" in mail.html
    assert "<img" not in mail.html  # nothing for Outlook to block
    assert "fonts.googleapis.com" not in mail.html  # no web-font request either
    for m in rendered.values():
        assert "<mj-" not in m.html


def test_new_readers_are_offered_basics_and_see_what_comes_after(rendered):
    mail = rendered["getting-started"]
    featured = section(mail.html, "Your next step", "Coming next")
    assert "EQUIP Basics" in featured
    assert "Also open to you" not in mail.html
    assert "EQUIP in Action</strong> &mdash; Next step after EQUIP Basics" in mail.html.replace(
        "\u2014", "&mdash;"
    )
    assert "Data masterclass</strong> &mdash; Next step after EQUIP in Action" in mail.html.replace(
        "\u2014", "&mdash;"
    )
    assert "- EQUIP in Action \u2014 Next step after EQUIP Basics" in mail.text
    # No sign-up link for a course they cannot attend yet.
    assert {link.course_id for link in mail.links} == {"equip-basics", None}


def test_project_leads_are_offered_the_data_masterclass_first(rendered):
    mail = rendered["project-leads"]
    featured = section(mail.html, "Your next step", "Also open to you")
    also = section(mail.html, "Also open to you", "Unsubscribe")
    assert "Data masterclass" in featured and "EQUIP Basics" not in featured
    assert "EQUIP Basics" in also and "EQUIP in Action" in also
    assert "Next step after" not in mail.html
    text_featured = section(mail.text, "YOUR NEXT STEP", "ALSO OPEN TO YOU")
    assert "DATA MASTERCLASS" in text_featured
    assert [link.key for link in mail.links][:1] == ["data-masterclass"]


def test_readers_with_basics_get_equip_in_action_first(rendered):
    mail = rendered["ready-for-action"]
    featured = section(mail.text, "YOUR NEXT STEP", "ALSO OPEN TO YOU")
    assert "EQUIP IN ACTION" in featured
    assert "Data masterclass \u2014 Next step after EQUIP in Action" in mail.text
    # EQUIP in Action is one course-level sign-up for all three days.
    assert "Sign up for EQUIP in Action" in mail.html
    assert "To complete the course you will need to attend all 3 days." in featured
    assert (
        "Dates:\n- Thursday 13 June 2019, 09:00\u201317:00, Example Training Rooms, London E1\n"
        in featured
    )


def test_locked_courses_can_be_hidden(tmp_path):
    def hide(spec):
        spec["locked_courses"] = "hide"

    campaign = load_campaign(make_project(tmp_path, hide), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    assert "Next step after" not in mail.html and "Next step after" not in mail.text
    assert "Coming next" not in mail.html
    assert "Data masterclass</strong>" not in mail.html  # (the preheader still names it)
    assert "DATA MASTERCLASS" not in mail.text and "Data masterclass" not in mail.text


def test_sessions_with_their_own_sign_up_page_get_their_own_button(demo, rendered):
    mail = rendered["getting-started"]
    assert [link.key for link in mail.links] == [
        "equip-basics@2019-06-27",
        "equip-basics@2019-09-10",
        "link:about",
        "link:contact",
    ]
    first = mail.links[0]
    assert first.session == "2019-06-27" and first.course_id == "equip-basics"
    assert first.url.startswith(
        "https://equip.example.org/courses/basics?date=2019-06-27&utm_source=equip-newsletter"
    )
    assert "utm_content=equip-basics%402019-06-27" in first.url
    # The button's text says what it does, for screen readers and for people scanning.
    button = re.search(r'<a href="-eq_link_0-"[^>]*>([^<]*)</a>', mail.html)
    assert button and button.group(1).strip() == "Sign up for EQUIP Basics on Thursday 27 June"
    assert (
        "- Thursday 27 June 2019, 13:00\u201317:00, Example Community Centre, London E1\n"
        "  Sign up: -eqt_link_0-" in mail.text
    )


def test_links_need_no_utm_when_the_spec_turns_it_off(tmp_path):
    def no_utm(spec):
        spec["tracking"]["utm"] = False

    campaign = load_campaign(make_project(tmp_path, no_utm), allow_past=True)
    mail = render_campaign(campaign, ["project-leads"])["project-leads"]
    assert (
        plain_urls(mail)["data-masterclass"] == "https://equip.example.org/courses/data-masterclass"
    )


# ---------------------------------------------------------------------------------------
# Tokens and personalisation


def test_names_are_escaped_in_html_and_raw_in_text(rendered):
    mail = rendered["getting-started"]
    tricky = reader(first_name="<b>O'Brien & Co</b>", practice="Smith & Jones")
    values = recipient_values(mail, tricky, plain_urls(mail), "https://equip.example.org/u/abc")
    html, text = personalise(mail, values)
    assert "Dear &lt;b&gt;O&#x27;Brien &amp; Co&lt;/b&gt;," in html
    assert "<b>O'Brien" not in html
    assert "Dear <b>O'Brien & Co</b>," in text
    assert not re.search(r"-eqt?_\w+-", html + text)
    # Link targets: escaped inside href, written out in the text part.
    target = mail.links[0].url
    assert f'href="{target.replace("&", "&amp;")}"' in html
    assert f"Sign up: {target}" in text
    assert 'href="https://equip.example.org/u/abc"' in html
    assert "Unsubscribe: https://equip.example.org/u/abc" in text


def test_recipient_values_are_the_sendgrid_substitutions(rendered):
    mail = rendered["project-leads"]
    tracked = {
        link.key: f"https://equip.example.org/c/token{i}" for i, link in enumerate(mail.links)
    }
    values = recipient_values(
        mail, reader(first_name="Zoë"), tracked, "https://equip.example.org/u/x"
    )
    assert values["-eq_first_name-"] == "Zoë" and values["-eqt_first_name-"] == "Zoë"
    assert values["-eq_link_0-"] == "https://equip.example.org/c/token0"
    assert set(values) >= mail.tokens  # every token in the email has a value
    assert sum(len(k.encode()) + len(v.encode()) for k, v in values.items()) <= 10_000


def test_a_blank_first_name_still_reads_well(rendered):
    mail = rendered["getting-started"]
    html, text = personalise(
        mail, recipient_values(mail, reader(first_name=" "), plain_urls(mail), "#u")
    )
    assert "Dear colleague," in html and "Dear colleague," in text


def test_values_over_sendgrids_limit_are_refused(rendered):
    mail = rendered["getting-started"]
    with pytest.raises(RenderError, match="SendGrid allows 10,000"):
        recipient_values(mail, reader(practice="x" * 6000), plain_urls(mail), "#u")


def test_a_link_without_a_url_is_refused(rendered):
    mail = rendered["getting-started"]
    with pytest.raises(RenderError, match="no URL for link 'equip-basics@2019-06-27'"):
        recipient_values(mail, reader(), {}, "#u")


def test_personalise_fills_every_token_and_leaves_the_segment_untouched(rendered):
    # Its speed (a join, ~0.05 ms) is measured in benchmarks/run.py, not asserted here.
    mail = rendered["project-leads"]
    before = (mail.html, mail.text)
    values = recipient_values(mail, reader(), plain_urls(mail), "#u")
    html, text = personalise(mail, values)
    assert "-eq_" not in html and "-eqt_" not in text
    assert (mail.html, mail.text) == before


# ---------------------------------------------------------------------------------------
# The text part


def test_text_part_is_wrapped_and_keeps_link_targets_readable(rendered):
    mail = rendered["ready-for-action"]
    for line in mail.text.splitlines():
        if not re.search(r"-eqt_\w+-|https?://", line):
            assert len(line) <= 76, line
    assert "Thursday 13 June 2019, 09:00\u201317:00" in mail.text
    assert "Sign up for EQUIP in Action: -eqt_link_0-" in mail.text
    assert "Who can register? To enrol on this course you will need some basic QI" in mail.text


def test_wrap_never_splits_tokens_or_urls():
    words = "Sign up for the course at -eqt_link_12- or read https://equip.example.org/a-long-path-with-hyphens"
    out = wrap(words, width=30)
    assert "-eqt_link_12-" in out and "https://equip.example.org/a-long-path-with-hyphens" in out
    assert all(len(line) <= 30 or "://" in line or "-eqt_" in line for line in out.splitlines())


# ---------------------------------------------------------------------------------------
# Markdown in the spec


def test_markdown_links_are_tracked_and_placeholders_escaped_correctly(tmp_path):
    def links(spec):
        spec["intro"] = (
            "Dear {first_name} at {practice},\n\nRead [about EQUIP](https://equip.example.org/about) "
            "and [the QI guide](https://qi.example.org/guide?part=1&lang=en) <script>x</script>.\n"
        )

    campaign = load_campaign(make_project(tmp_path, links), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    keys = [link.key for link in mail.links]
    assert keys[:2] == ["link:about", "link:qi-example-org-guide-part-1-lang-en"]  # reading order
    assert "&lt;script&gt;" in mail.html and "<script>" not in mail.html
    assert '<a href="-eq_link_0-"' in mail.html
    assert "Dear -eqt_first_name- at -eqt_practice-," in mail.text
    assert "about EQUIP (-eqt_link_0-)" in mail.text
    html, text = personalise(
        mail, recipient_values(mail, reader(practice="Smith & Jones"), plain_urls(mail), "#u")
    )
    assert "at Smith &amp; Jones," in html and "at Smith & Jones," in text


def test_other_links_stay_plain_when_not_tracked(tmp_path):
    def untracked(spec):
        spec["tracking"]["track_other_links"] = False
        spec["intro"] = "Hello {first_name}, see [the guide](https://qi.example.org/guide).\n"

    campaign = load_campaign(make_project(tmp_path, untracked), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    assert [link.key for link in mail.links] == [
        "equip-basics@2019-06-27",
        "equip-basics@2019-09-10",
    ]
    assert 'href="https://qi.example.org/guide"' in mail.html
    assert "the guide (https://qi.example.org/guide)" in mail.text
    assert "About: https://equip.example.org/about" in mail.text


def test_an_unknown_placeholder_is_reported(tmp_path):
    def typo(spec):
        spec["intro"] = "Dear {firstname},\n"

    campaign = load_campaign(make_project(tmp_path, typo), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert str(err.value) == (
        "campaigns/variant.yaml: intro: {firstname} is not a placeholder; "
        "use {first_name} or {practice}"
    )


# ---------------------------------------------------------------------------------------
# premailer traps


class _CountingServer:
    """A local web server that counts requests: nothing should ever reach it."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.end_headers()
                self.wfile.write(b".from-network { color: red }")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_inlining_never_fetches_stylesheets(tmp_path):
    server = _CountingServer()
    try:
        css = f"@import url({server.url}/imported.css); .card {{ color: #005EB8 }}"
        page = (
            f'<!doctype html><html><head><link rel="stylesheet" href="{server.url}/linked.css">'
            f"<style>@import url({server.url}/kept-for-mail-clients.css);</style>"
            f"<style>{css}</style></head>"
            '<body><p class="card">Hello</p></body></html>'
        )
        out = inline_css(page, [css])
    finally:
        server.close()
    assert server.hits == []
    assert '<p class="card" style="color:#005EB8">Hello</p>' in out
    assert f'<link rel="stylesheet" href="{server.url}/linked.css">' in out  # left for the client


def test_the_doctype_survives_premailer():
    out = inline_css("<!doctype html><html><head></head><body><p>Hi</p></body></html>")
    assert out.startswith("<!DOCTYPE html>")


def test_responsive_media_queries_keep_important(rendered):
    html = rendered["project-leads"].html
    assert re.search(
        r"@media only screen and \(max-width: ?480px\) \{[^}]*\.eq-h1 \{ font-size: 24px !important;",
        html,
    )
    assert ".mj-column-per-100 { width:100% !important;" in html
    assert "data-premailer" not in html


def test_token_hrefs_survive_and_urls_with_spaces_are_encoded():
    page = (
        "<!doctype html><html><head><style>a { color: #005EB8 }</style></head><body>"
        '<a href="-eq_link_0-">Sign up</a> <a href="https://qi.example.org/a guide">Guide</a>'
        "</body></html>"
    )
    out = inline_css(page, ["a { color: #005EB8 }"])
    assert '<a href="-eq_link_0-" style="color:#005EB8">Sign up</a>' in out
    assert 'href="https://qi.example.org/a%20guide"' in out


def test_every_link_token_reaches_an_href(rendered):
    for mail in rendered.values():
        hrefs = re.findall(r'href="(-eq_[a-z0-9_]+-)"', mail.html)
        assert set(hrefs) == {f"-eq_link_{i}-" for i in range(len(mail.links))} | {
            "-eq_unsubscribe-"
        }


def test_card_styles_are_inlined_because_mjml_python_does_not(rendered):
    html = rendered["getting-started"].html
    assert re.search(r'<h3 class="course-name" style="[^"]*color:#005EB8', html)
    assert ".course-name {" not in html  # the inlined block is not left in <head>


def test_colours_meet_wcag_aa_contrast():
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    for what, fg, bg in PALETTE.contrast_pairs():
        a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
        assert (a + 0.05) / (b + 0.05) >= 4.5, what


# ---------------------------------------------------------------------------------------
# Errors point at the template line


def test_an_unknown_mj_tag_is_an_error_not_silence(tmp_path):
    lines = {}

    def typo(folder):
        lines["at"] = edit_template(
            folder,
            "_course_card.mjml.j2",
            '        <mj-spacer height="8px" />',
            '        <mj-spacerr height="8px" />',
        )

    campaign = load_campaign(make_project(tmp_path, templates=typo), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign, ["ready-for-action"])
    assert err.value.where == f"templates/_course_card.mjml.j2:{lines['at']}:9"
    assert "<mj-spacerr> is not an MJML tag" in err.value.message


def test_an_mjml_error_with_a_position_names_the_template_line(tmp_path):
    lines = {}

    def misplaced(folder):
        lines["at"] = edit_template(
            folder,
            "course-menu.mjml.j2",
            "    <mj-preview>",
            "    <mj-text>in the head</mj-text>\n    <mj-preview>",
        )

    campaign = load_campaign(make_project(tmp_path, templates=misplaced), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/course-menu.mjml.j2:{lines['at']}:5"
    assert str(err.value).startswith(
        f"templates/course-menu.mjml.j2:{lines['at']}:5: MJML cannot compile this <mj-text>"
    )


def test_an_mjml_error_without_a_position_is_found_in_the_template(tmp_path):
    lines = {}

    def unclosed(folder):
        text = (folder / "_footer.mjml.j2").read_text(encoding="utf-8")
        lines["at"] = text[: text.index("<mj-text>")].count("\n") + 1
        edit_template(folder, "_footer.mjml.j2", "        </mj-text>\n", "")

    campaign = load_campaign(make_project(tmp_path, templates=unclosed), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/_footer.mjml.j2:{lines['at']}:9"
    assert "<mj-text> is not closed before </mj-column>" in err.value.message


def test_mjml_compile_reports_where_it_stopped_reading():
    source = (
        "<mjml>\n  <mj-body>\n    <mj-section>\n      <mj-column>\n        <mj-text>Hi\n"
        "      </mj-column>\n    </mj-section>\n  </mj-body>\n</mjml>\n"
    )
    with pytest.raises(RenderError) as err:
        compile_mjml(source)
    assert err.value.where == "MJML:5:9"
    assert err.value.message.startswith(
        "MJML cannot compile this: <mj-text> is not closed before </mj-column>"
    )


def test_mjml_byte_offsets_are_counted_in_characters():
    """mjml-python counts bytes; 'Zoë – café' is 10 characters but 14 bytes."""
    source = (
        "<mjml>\n  <mj-head>\n    <mj-title>Zoë – café</mj-title> <mj-text>no</mj-text>\n"
        "  </mj-head>\n  <mj-body></mj-body>\n</mjml>\n"
    )
    with pytest.raises(RenderError) as err:
        compile_mjml(source)
    assert err.value.where == "MJML:3:37"
    assert source.splitlines()[2][36:].startswith("<mj-text>")


def test_markdown_links_whose_names_collide_stay_apart(tmp_path):
    def similar(spec):
        spec["intro"] = (
            "See [one](https://qi.example.org/a-b) and [two](https://qi.example.org/a_b).\n"
        )

    campaign = load_campaign(make_project(tmp_path, similar), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    first, second = mail.links[:2]
    assert first.key == "link:qi-example-org-a-b"
    assert second.key.startswith("link:qi-example-org-a-b-") and second.url.startswith(
        "https://qi.example.org/a_b"
    )


def test_a_jinja_syntax_error_names_file_and_line(tmp_path):
    lines = {}

    def broken(folder):
        lines["at"] = edit_template(folder, "_header.mjml.j2", "{{ title }}", "{{ title }")

    campaign = load_campaign(make_project(tmp_path, templates=broken), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/_header.mjml.j2:{lines['at']}"
    assert err.value.message.startswith("template syntax:")


def test_an_undefined_name_names_file_and_line(tmp_path):
    lines = {}

    def typo(folder):
        lines["at"] = edit_template(
            folder, "_course_card.mjml.j2", "{{ card.name }}", "{{ card.nmae }}"
        )

    campaign = load_campaign(make_project(tmp_path, templates=typo), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/_course_card.mjml.j2:{lines['at']}"
    assert "nmae" in err.value.message


def test_a_missing_template_is_named(tmp_path):
    def other(spec):
        spec["template"] = "autumn-menu"

    campaign = load_campaign(make_project(tmp_path, other), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == "templates/autumn-menu.mjml.j2"


def test_an_unknown_segment_is_named(demo):
    with pytest.raises(
        RenderError, match="there is no segment 'everyone'; the segments are getting-started"
    ):
        render_campaign(demo, ["everyone"])


def test_recipient_values_escape_and_measure_like_the_plain_definition(rendered):
    # recipient_values is prepared per segment (values_builder); it must give exactly the
    # dict the definition gives: html.escape on every HTML value, UTF-8 bytes of keys and values.
    import html as html_lib

    from equip_mailer.compose.render import (
        BLANK_VALUES,
        PLACEHOLDERS,
        html_token,
        link_token_name,
        text_token,
        values_builder,
    )

    mail = rendered["project-leads"]
    urls = {link.key: f"https://e.example/c/t{i}?a=1&b='x'" for i, link in enumerate(mail.links)}
    for who in (
        reader(first_name="Zoë", practice="Smith & Jones <Surgery>"),
        reader(first_name=" O'Brien ", practice=""),
        reader(first_name="Ann"),
    ):
        raw = {n: (getattr(who, n) or "").strip() or BLANK_VALUES[n] for n in PLACEHOLDERS}
        raw |= {link_token_name(i): urls[link.key] for i, link in enumerate(mail.links)}
        raw["unsubscribe"] = 'https://e.example/u/"x"'
        expected = {}
        for name, value in raw.items():
            expected[html_token(name)] = html_lib.escape(value, quote=True)
            expected[text_token(name)] = value
        got = recipient_values(mail, who, urls, 'https://e.example/u/"x"')
        assert list(got.items()) == list(expected.items())
        assert (
            values_builder(mail)(
                who, [urls[link.key] for link in mail.links], 'https://e.example/u/"x"'
            )
            == expected
        )


def test_the_size_limit_counts_utf8_bytes(rendered):
    mail = rendered["getting-started"]
    base = recipient_values(mail, reader(practice=""), plain_urls(mail), "#u")
    used = sum(len(k.encode()) + len(v.encode()) for k, v in base.items()) - 2 * len(
        "your practice"
    )
    room = 10_000 - used  # bytes left for the practice, twice (html + text)
    fits = "é" * (room // 4)  # 2 bytes a character, twice
    recipient_values(mail, reader(practice=fits), plain_urls(mail), "#u")
    with pytest.raises(RenderError, match="SendGrid allows 10,000"):
        recipient_values(mail, reader(practice=fits + "éé"), plain_urls(mail), "#u")


def test_shared_url_tokens_give_the_same_mail(rendered):
    # The send loop gives each of our URLs one token in both parts when no URL needs escaping.
    from equip_mailer.compose.render import share_url_tokens, values_builder
    from equip_mailer.send.backends.outbox import substitute

    mail = rendered["project-leads"]
    urls = [f"https://e.example/c/Tok{i}-_" for i in range(len(mail.links))]
    who = reader(first_name="O'Brien", practice="Smith & Jones")
    full = recipient_values(
        mail, who, {link.key: u for link, u in zip(mail.links, urls)}, "https://e.example/u/x"
    )
    html, text = personalise(mail, full)
    shared = values_builder(mail, shared_urls=True)(who, urls, "https://e.example/u/x")
    assert len(shared) == len(full) - len(urls) - 1
    assert substitute(mail.html, shared) == html
    assert substitute(share_url_tokens(mail.text, len(urls)), shared) == text
    assert "-eqt_link" not in share_url_tokens(mail.text, len(urls))
    with pytest.raises(RenderError, match="needs HTML escaping"):
        values_builder(mail, shared_urls=True)(who, ["https://e.example/c/?a&b"] * len(urls), "#u")
