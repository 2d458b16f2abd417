"""Filling a rendered segment's tokens for one reader: escaped in HTML, raw in text, within
SendGrid's size limit, and the same dict however it is prepared.
"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from support.lists import write
from support.rendering import plain_urls, reader

from equip_mailer.compose.audience import read_list
from equip_mailer.compose.render.personalisation import (
    personalise,
    reader_values_builder,
    recipient_values,
    values_builder,
    with_reader_urls,
)
from equip_mailer.compose.render.tokens import (
    BLANK_VALUES,
    PLACEHOLDERS,
    READER_TOKEN,
    html_token,
    link_token_name,
    text_token,
)
from equip_mailer.errors import RenderError
from equip_mailer.send.backends.outbox import substitute


def test_names_are_escaped_in_html_and_raw_in_text(rendered):
    mail = rendered["project-leads"]
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
    assert "&" in target and f"Sign up for Data masterclass:\n{target}" in text
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


def test_a_name_columns_title_never_becomes_the_greeting(rendered, tmp_path):
    """A list with only a Name column: "Dr Vik Patel" reads "Dear Vik," (it read "Dear Dr,"
    when the first word was the first name), and a title alone reads "Dear colleague,"."""
    path = write(
        tmp_path / "staff.csv",
        "Email,Name,QI level\n"
        "vik@nhs.example,Dr Vik Patel,none\n"
        "zoe@nhs.example,dr. Zoë Ó Ceallaigh,none\n"
        "sam@nhs.example,Dr,none\n",
    )
    recipients, _, _ = read_list(path, "staff.csv")
    mail = rendered["getting-started"]
    greetings = []
    for who in recipients:
        html, text = personalise(mail, recipient_values(mail, who, plain_urls(mail), "#u"))
        [greeting] = re.findall(r"Dear [^,\n<]*,", text)
        assert f"<p>{html_lib.escape(greeting)}" in html
        greetings.append(greeting)
    assert greetings == ["Dear Vik,", "Dear Zoë,", "Dear colleague,"]


def test_values_over_sendgrids_limit_are_refused(rendered):
    mail = rendered["getting-started"]
    with pytest.raises(RenderError, match="SendGrid allows 10,000"):
        recipient_values(mail, reader(practice="x" * 6000), plain_urls(mail), "#u")


def test_a_link_without_a_url_is_refused(rendered):
    mail = rendered["getting-started"]
    with pytest.raises(RenderError, match="no URL for link 'equip-basics'"):
        recipient_values(mail, reader(), {}, "#u")


def test_personalise_fills_every_token_and_leaves_the_segment_untouched(rendered):
    # Its speed (a join, ~0.05 ms) is measured in benchmarks/run.py, not asserted here.
    mail = rendered["project-leads"]
    before = (mail.html, mail.text)
    values = recipient_values(mail, reader(), plain_urls(mail), "#u")
    html, text = personalise(mail, values)
    assert "-eq_" not in html and "-eqt_" not in text
    assert (mail.html, mail.text) == before


def test_recipient_values_escape_and_measure_like_the_plain_definition(rendered):
    # recipient_values is prepared per segment (values_builder); it must give exactly the
    # dict the definition gives: html.escape on every HTML value, UTF-8 bytes of keys and values.
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


def test_urls_written_in_around_the_reader_token_give_the_same_mail(rendered):
    # The send loop writes each link's URL into the segment once, with the reader's token
    # inside; per reader the values are their placeholders and that token alone.
    mail = rendered["project-leads"]
    token = "Tok-_9"
    per_link = [f"https://e.example/c/{READER_TOKEN}/{i}?a=1&b" for i in range(len(mail.links))]
    unsub = f"https://e.example/u/{READER_TOKEN}"
    who = reader(first_name="O'Brien", practice="Smith & Jones")
    full = recipient_values(
        mail,
        who,
        {
            link.key: u.replace(READER_TOKEN, token)
            for link, u in zip(mail.links, per_link, strict=True)
        },
        unsub.replace(READER_TOKEN, token),
    )
    subject, html, text = with_reader_urls(mail, per_link, unsub)
    values = reader_values_builder(mail)(who, token)
    assert len(values) == 2 * len(PLACEHOLDERS) + 1
    assert values[READER_TOKEN] == token
    assert (substitute(html, values), substitute(text, values)) == personalise(mail, full)
    assert substitute(subject, values) == substitute(mail.subject, full)
    assert "?a=1&amp;b" in html and "?a=1&b" in text  # escaped once, for HTML only
    assert "-eq_link" not in html and "-eqt_link" not in text and "-eqt_unsub" not in text
    with pytest.raises(RenderError, match="2 link URLs for the"):
        with_reader_urls(mail, per_link[:2], unsub)


def test_the_reader_values_keep_the_size_limit(rendered):
    mail = rendered["getting-started"]
    base = reader_values_builder(mail)(reader(practice=""), "T" * 22)
    used = sum(len(k.encode()) + len(v.encode()) for k, v in base.items()) - 2 * len(
        "your practice"
    )
    fits = "é" * ((10_000 - used) // 4)
    reader_values_builder(mail)(reader(practice=fits), "T" * 22)
    with pytest.raises(RenderError, match="SendGrid allows 10,000"):
        reader_values_builder(mail)(reader(practice=fits + "éé"), "T" * 22)
