"""Track: the public service that answers readers' clicks and SendGrid's event webhook.

``app`` assembles the Starlette app from one module per route: ``clicks`` (/c/ redirects,
with ``lookups`` caching what a token points at and ``click_writer`` storing clicks in
batches), ``unsubscribe`` (/u/), ``webhook_route`` (/webhooks/sendgrid, with
``webhook_verify`` checking SendGrid's signature and ``webhook`` normalising and storing its
events) and ``health`` (/healthz). ``machines`` flags clicks made by mail scanners rather
than people. Everything it learns goes into the shared store, where the reports read it.
"""
