"""A warm curated-layer engine for interactive questions.

`connect_curated()` builds a fresh DuckDB and loads the Iceberg extensions each time (~0.5 s, most
of an answer's budget). ADEN keeps one base connection per settings, refreshes its views from the
Iceberg catalog at most every REFRESH_SECONDS (cheap: metadata only), and hands out cursors —
separate DuckDB connections over the same in-memory database, closed after each query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import duckdb

from akko_assets.resources.engine import attach_iceberg_views
from akko_assets.settings import Settings

REFRESH_SECONDS = 5.0


class WarmEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._base: duckdb.DuckDBPyConnection | None = None
        self._refreshed = 0.0

    def connect(self) -> duckdb.DuckDBPyConnection:
        from akko_assets.lakehouse.catalog import open_catalog

        with self._lock:
            if self._base is None:
                self._base = duckdb.connect(":memory:")
                self._refreshed = 0.0
            if time.monotonic() - self._refreshed > REFRESH_SECONDS:
                # Re-point the views at each table's current snapshot (a new pipeline run may have published).
                attach_iceberg_views(self._base, open_catalog(self.settings))
                self._refreshed = time.monotonic()
            return self._base.cursor()

    def close(self) -> None:
        with self._lock:
            if self._base is not None:
                self._base.close()
                self._base = None


_ENGINES: dict[tuple[str, str, str], WarmEngine] = {}
_ENGINES_LOCK = threading.Lock()


def warm_connect(settings: Settings) -> Callable[[], duckdb.DuckDBPyConnection]:
    key = (str(settings.home), settings.iceberg_catalog_uri, settings.iceberg_warehouse)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = WarmEngine(settings)
    return engine.connect
