"""Send: every recipient gets exactly one copy, through one small delivery interface.

``dispatch`` runs the send loop (batches of one segment), ``ledger`` keeps the exactly-once
bookkeeping in the store (claim before the request, record after), ``links`` signs the
tracked and unsubscribe URLs, and ``delivery`` holds the backends (outbox ``.eml`` files,
SendGrid) behind one ``send_batch`` call. Mail leaves the pipeline here.
"""
