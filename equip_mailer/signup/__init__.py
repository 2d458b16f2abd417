"""Hosted course sign-up: from a reader's click to a place, a waiting list or a cancellation.

Data enters from the spec (``catalogue.register_courses``, run by ``send`` and ``attendance``) and
from people's forms; ``registration`` decides who gets a place; ``notify`` turns each change
into a mail through the transactional-mail ledger, with a calendar (``calendar``) when a place
is given; ``routes`` are the pages, mounted on the tracking service.
"""
