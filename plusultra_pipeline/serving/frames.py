"""The universe's window frame of a decision range, read once and shared by the requests on it.

Serving traffic asks about the same few days over and over, for one symbol or a handful. The
agent's own one-symbol read costs nearly what the universe's does (DuckDB's SQLite scanner reads
the whole ``series`` table either way: 0.70 s for one symbol of 500 here), and dominates the
answer (the forward pass is ~8 ms). So the server reads the universe's window frame of a range
once (`MarketNNPlusUltraAgent.read_window_frame`, the read `predict` makes for every symbol:
what the `inference_frames` asset reads) and predicts any subset from it
(`predict_window_frame` over those symbols' rows: per-symbol features do not depend on the other
symbols, cross-sectional ones rank over the universe anyway, and each request's risk is over its
own symbols). ``data_version`` is then the version of the universe's rows read for the range.

Entries are keyed by the model (its lineage id and checkpoint), the database file's identity
(path, mtime, size: a new candle changes it) and the range; least recently used entries go first.
Concurrent misses of one key read once (a per-key lock); other keys are not held up.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path


class WindowFrames:
    """LRU of ``(window frame, data version)`` per (model, database state, range); ``entries=0``
    turns it off (every request reads what it predicts)."""

    def __init__(self, entries: int):
        self.entries = entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict = {}
        self.hits = self.misses = 0

    def get(self, model, database: Path, start, end):
        """The universe's window frame of ``[start, end]`` and its data version, read on a miss."""
        st = os.stat(database)
        key = (model.lineage_id, model.checkpoint, str(database), st.st_mtime_ns, st.st_size, str(start), str(end))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one read per key; a second caller waits for it instead of reading again
            with self._lock:
                if key in self._items:
                    self.hits += 1
                    return self._items[key]
            value = self._read(model, database, start, end)
            with self._lock:
                self.misses += 1
                self._items[key] = value
                while len(self._items) > self.entries:
                    self._items.popitem(last=False)
                self._key_locks.pop(key, None)
            return value

    @staticmethod
    def _read(model, database: Path, start, end):
        from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

        with SQLiteMarketDataset(database) as dataset:
            return model.agent.read_window_frame(dataset, start, end)
