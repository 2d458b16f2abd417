"""The in-memory backend: batches kept in a list, every one answered ``sent``.

For library users' own tests (anymail's ``test`` backend): the send loop, the ledger and
the batches it builds are all real, only the wire is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from equip_mailer.send.batch import Batch, BatchResult


@dataclass
class MemoryBackend:
    """Keeps batches in a list, in the order they were sent."""

    name: str = "memory"
    batches: list[Batch] = field(default_factory=list)

    def send_batch(self, batch: Batch) -> BatchResult:
        self.batches.append(batch)
        return BatchResult("sent")
