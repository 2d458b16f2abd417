"""Inlining the card styles with premailer, and the traps it sets: fetching stylesheets,
dropping the doctype, stripping !important from media queries.
"""

from __future__ import annotations

import http.server
import re
import threading

from equip_mailer.compose.render.css_inlining import inline_css


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
        r"@media only screen and \(max-width: ?480px\) \{[^}]*"
        r"\.eq-h1 \{ font-size: 24px !important;",
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


def test_card_styles_are_inlined_because_mjml_python_does_not(rendered):
    html = rendered["getting-started"].html
    assert re.search(r'<h3 class="course-name" style="[^"]*color:#005EB8', html)
    assert ".course-name {" not in html  # the inlined block is not left in <head>
