"""equip-mailer: the EQUIP course-menu newsletter pipeline.

Data enters as a campaign spec (``spec``) and mailing lists (``audience``), is turned into
one email per segment (``menu`` decides what each segment sees, ``render`` builds it, ``links``
makes the tracked links), and leaves through ``delivery`` (outbox or SendGrid) under the
``ledger``'s exactly-once bookkeeping. ``tracking`` serves clicks, unsubscribes and SendGrid's
event webhook into the ``store``; ``report`` reads the same store.
"""

__version__ = "0.1.0"
