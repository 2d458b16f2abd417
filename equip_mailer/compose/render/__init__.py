"""Render: from a campaign spec to one finished email per segment, with tokens where readers
differ. One module per step, in the order a segment goes through them:

- ``views``: what the templates read (courses, sessions, footer, palette), worded;
  ``markdown`` renders the spec's Markdown fields for both parts; ``mail_links`` names
  and numbers the links an email contains; ``tokens`` names the stand-ins for what differs.
- ``templates``: the Jinja step, and template lines for errors found in later steps.
- ``mjml_compile``: MJML to HTML; ``css_inlining``: the card styles inlined (premailer).
- ``pipeline``: the steps in order (``render_campaign``, ``render_mjml``).
- ``personalisation``: each reader's values for the tokens (``recipient_values``,
  ``personalise``), used when sending.

Each step has a trap it defends against, with a test per trap in
``tests/compose/render/``: premailer fetches remote CSS, drops mjml's lower-case doctype and
strips ``!important`` from media queries; mjml-python neither inlines ``mj-style inline``
nor complains about unknown ``mj-`` tags, and reports parse errors as byte offsets (or not
at all) in text nobody wrote by hand. Every failure becomes a ``RenderError`` that names the
template file, line and column.
"""
