"""The in-memory backend keeps what it was given, as a library user's own tests would read it."""

from __future__ import annotations

from support.mail_batches import batch

from equip_mailer.send.backends.memory import MemoryBackend


def test_batches_are_kept_in_order_and_each_is_sent():
    mem = MemoryBackend()
    first, second = batch(2), batch(1, test=True)
    assert [mem.send_batch(b).state for b in (first, second)] == ["sent", "sent"]
    assert mem.batches == [first, second]
    assert [a.email for a in mem.batches[0].addressees] == [
        "person1@example.org",
        "person2@example.org",
    ]
