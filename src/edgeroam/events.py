"""The event log: persisted through the store and fanned out to live subscribers (SSE)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import Counter, deque
from typing import Any

from edgeroam.model import Event, EventCategory, Severity
from edgeroam.store import Store


class EventLog:
    """Collects events, writes them in batches and notifies subscribers.

    Events are buffered during a control cycle and flushed once at its end, so a cycle that
    decides 1,000 things costs one transaction, not 1,000.
    """

    def __init__(self, store: Store | None, recent: int = 1000) -> None:
        self.store = store
        self._pending: list[Event] = []
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[Event]] = []
        self.recent: deque[Event] = deque(maxlen=recent)
        self.counts: Counter[tuple[str, str]] = Counter()
        self._next_id = 1

    def emit(
        self,
        time: float,
        category: EventCategory,
        message: str,
        *,
        tags: tuple[str, ...] = (),
        severity: Severity = Severity.INFO,
        data: dict[str, Any] | None = None,
    ) -> Event:
        event = Event(
            time=time,
            category=category,
            message=message,
            tags=tags,
            severity=severity,
            data=data or {},
        )
        with self._lock:
            self._pending.append(event)
        return event

    def flush(self) -> list[Event]:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return []
        if self.store is not None:
            stored = self.store.add_events(pending)
        else:
            stored = []
            for e in pending:
                stored.append(e.model_copy(update={"id": self._next_id}))
                self._next_id += 1
        with self._lock:
            subscribers = list(self._subscribers)
            for e in stored:
                self.recent.append(e)
                self.counts[(e.category.value, e.severity.value)] += 1
        for sub in subscribers:
            for e in stored:
                # A slow SSE client loses live events, never the stored log.
                with contextlib.suppress(queue.Full):
                    sub.put_nowait(e)
        return stored

    def subscribe(self, maxsize: int = 10000) -> queue.Queue[Event]:
        q: queue.Queue[Event] = queue.Queue(maxsize=maxsize)
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[Event]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)
