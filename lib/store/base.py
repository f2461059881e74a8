"""What every part of the store shares: the engine, the dialect, and transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine

from lib.config import redact_url


class StoreBase:
    """The engine and transactions; the mixins of :class:`lib.store.Store` build on it."""

    url: str
    dialect: str
    engine: Engine
    _ph: str
    _writer: Engine

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, consistent: bool = False) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if consistent and self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def _cursor(self, conn: Connection):
        return conn.connection.cursor()

    def _ts(self, column: str) -> str:
        """SQL reading a timestamp column as integer microseconds since the epoch."""
        if self.is_sqlite:
            return column
        return f"CAST(ROUND(EXTRACT(EPOCH FROM {column}) * 1000000) AS BIGINT)"
