"""Track: the public service that answers readers' clicks and SendGrid's event webhook.

``service`` builds the Starlette app (``/c/`` redirects, ``/u/`` unsubscribe,
``/webhooks/sendgrid``, ``/healthz``), ``webhook`` verifies and normalises SendGrid's events,
and ``machines`` flags clicks made by mail scanners rather than people. Everything it learns
goes into the shared store, where the reports read it.
"""
