"""Report: what each quarter's newsletter drew, computed from the store.

The team reads these in a browser, pastes them into board papers and opens them in Excel,
so the figures must be the same everywhere: pure functions compute every figure once, and
the writers only format them. In the order data flows:

- ``load``: one campaign read from the store into ``Frames`` (the only SQL).
- ``model``: the shapes that flow: ``Frames`` and ``Names`` in, ``Table``s and ``Report`` out.
- ``counting``: per-recipient flags (sent, delivered, clicked) and the counting rules.
- the tables, one module per subject: ``funnel`` (per segment, sent to signed up),
  ``courses`` (offered, clicked, signed up against places; segment × course), ``sessions``
  (per date, places filled as on the rosters), ``breakdowns`` (practice, role, human vs
  machine clicks).
- ``over_time``: clicks per hour for the first week, then per day.
- ``assemble``: a whole report (tables, headline, notes); campaigns compared.
- ``charts``, ``page``: SVG charts (drawn by ``svg``, and by ``svg_narrow`` for a phone) and
  the self-contained HTML page (``templates/``).
- ``spreadsheets``, ``files``: XLSX and CSV with formulas defused; the report's folder.
- ``terminal``: the summary printed by ``equip-mailer report``.

Definitions, chosen so a rate never exceeds 100 % and a re-run gives the same answer:

- **sent**: the ledger says ``sent``, or an event (delivered, open, click) proves the mail
  arrived even though the ledger is unsure (e.g. ``uncertain`` after a timeout).
- **delivered**: a SendGrid ``delivered`` event, or a click/open (which proves delivery even
  if the webhook missed the event). When the campaign has *no* delivered events at all (sent
  through the outbox, or the webhook was never set up) delivered falls back to sent, and the
  report says so in a note.
- **bounced**: a ``bounce`` or ``dropped`` event: the mail did not reach the reader.
- **clicks**: ``click`` events that join to a recipient of this campaign. If our own tracker
  recorded any clicks, SendGrid's click events are left out: with both switched on the same
  click would be counted twice, and our tracker knows the link for certain.
- **machine clicks** (mail scanners, link checkers) are flagged by the tracking code; the
  headline figures use human clicks only unless ``human_only=False`` (``--all``), and the
  machine and raw figures are always shown beside them.
- **click-through rate** = unique clickers / delivered.
- **opens** are shown only when the store has open events, and always marked unreliable
  (Apple Mail Privacy Protection opens everything; many clients block the pixel).
"""
