"""Backends: one class per way mail leaves, each behind the ``Backend`` interface of
``send/batch.py`` (a ``name`` and ``send_batch(Batch) -> BatchResult``).

``outbox`` writes .eml files (the default: no credentials, no server), ``sendgrid`` posts to
SendGrid's Mail Send API, ``memory`` keeps batches in a list for tests. A new backend is a
new module here with one class; the send loop needs nothing else from it.
"""
