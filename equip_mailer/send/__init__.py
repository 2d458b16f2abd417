"""Send: every recipient gets exactly one copy, through one small delivery interface.

Where mail leaves the pipeline. ``dispatch`` runs the send loop over batches that
``prepare`` builds (one segment rendered once, links signed by ``links``); ``ledger`` keeps
the exactly-once bookkeeping in the store (claim before the request, record after; its row
operations in ``ledger_rows`` and ``ledger_sync``, its lock's liveness in ``lock_owner``).
A backend is given a ``batch.Batch`` and answers a ``batch.BatchResult``; the backends
themselves (outbox ``.eml`` files, SendGrid, in memory) are in ``backends/``, the SendGrid
request body in ``sendgrid_request``, per-campaign request settings in ``campaign_mail``.
``trial_runs`` holds --dry-run and --test-to, ``schedule`` the scheduled sends.

Single transactional messages (confirmations, sign-in links) have their own exactly-once
ledger: ``notices`` (enqueue with the change they announce, then claim, send, record),
``notice_transports`` (outbox or SendGrid) and ``notice_worker`` (the service's sender).
"""
