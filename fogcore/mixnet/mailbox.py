"""Mailboxes at a gateway: messages delivered (`DELIVER`) or replies (`REPLY`) that reached
this node, held in memory for their recipient to fetch. Bounded in the number of mailboxes
and in messages per mailbox; what does not fit is dropped and counted."""

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

__all__ = ["Delivery", "MailboxStore"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivered message: `kind` 2 (DELIVER, `payload` the message) or 3 (REPLY,
    `payload` the 2048-byte reply still encrypted for the SURB's owner, `surb_id` set)."""

    kind: int
    payload: bytes
    surb_id: bytes | None = None


class MailboxStore:
    """In-memory mailboxes keyed by 32-byte mailbox id."""

    def __init__(self, max_boxes: int = 10000, max_per_box: int = 256):
        self.max_boxes = max_boxes
        self.max_per_box = max_per_box
        self._boxes: OrderedDict[bytes, deque[Delivery]] = OrderedDict()
        self.stored = 0
        self.drops: Counter[str] = Counter()

    def put(self, mailbox_id: bytes, delivery: Delivery) -> bool:
        """Store a delivery; False (and counted) when the mailbox or the store is full."""
        box = self._boxes.get(mailbox_id)
        if box is None:
            if len(self._boxes) >= self.max_boxes:
                self.drops["mailboxes_full"] += 1
                return False
            box = self._boxes[mailbox_id] = deque()
        if len(box) >= self.max_per_box:
            self.drops["mailbox_full"] += 1
            return False
        box.append(delivery)
        self.stored += 1
        return True

    def fetch(self, mailbox_id: bytes, limit: int | None = None) -> list[Delivery]:
        """Remove and return up to `limit` (default all) deliveries of a mailbox, oldest
        first."""
        box = self._boxes.get(bytes(mailbox_id))
        if not box:
            return []
        n = len(box) if limit is None else min(limit, len(box))
        out = [box.popleft() for _ in range(n)]
        if not box:
            del self._boxes[bytes(mailbox_id)]
        return out

    def count(self, mailbox_id: bytes | None = None) -> int:
        """Deliveries waiting in one mailbox, or in all of them."""
        if mailbox_id is not None:
            return len(self._boxes.get(bytes(mailbox_id), ()))
        return sum(len(box) for box in self._boxes.values())
