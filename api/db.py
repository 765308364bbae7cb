"""Async engine and session factory; the transaction helpers services use.

On SQLite, writes go through a dedicated one-connection engine that opens
every transaction with ``BEGIN IMMEDIATE``: two writers can never interleave
a read-check-write (seat counts, balances), and other processes wait on the
busy timeout instead of failing. Reads use a separate pool in WAL mode, so
they never block behind writers.

Write sessions record the tables each transaction touched; after the commit
the read caches that depend on them are invalidated (:mod:`api.cache`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, UOWTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.pool import NullPool

from api.cache import ALL, ReadCaches
from api.errors import ApiError, database_unavailable, database_unavailable_error

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # isolation_level=None hands transaction control to our BEGIN below.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


WRITTEN = "pl_tables_written"
PARTITIONS = "pl_cache_partitions"


class _WriteSession(OrmSession):
    """The write sessions' class: its events note every table a transaction writes."""


def _note_flush(session: OrmSession, _flush: UOWTransaction) -> None:
    # Rows added or removed: "<table>"; rows changed: "<table>.<column>" per changed column
    # (a cache that overlays a column, e.g. seats, need not forget everything for it). For a
    # table some cache keys by one of its columns (api.cache partitions), "@<value>" says
    # whose row it was, so that cache forgets only that key.
    written = session.info.setdefault(WRITTEN, set())
    partitions: dict[str, str] = session.info.get(PARTITIONS, {})
    rows = [(obj, False) for obj in (*session.new, *session.deleted)] + [(obj, True) for obj in session.dirty]
    for obj, changed in rows:
        table = getattr(obj, "__tablename__", None)
        if table is None:
            written.add(ALL)
            continue
        if changed:
            names = [f"{table}.{attr.key}" for attr in sa_inspect(obj).attrs if attr.history.has_changes()]
        else:
            names = [table]
        column = partitions.get(table)
        owner = getattr(obj, column, None) if column else None
        written.update(f"{name}@{owner}" if owner is not None else name for name in names)


def _note_statement(state: ORMExecuteState) -> None:
    if state.is_select:
        return
    stmt = state.statement
    name = getattr(getattr(stmt, "table", None), "name", None)  # insert/update/delete; raw SQL has none
    written = state.session.info.setdefault(WRITTEN, set())
    columns = getattr(stmt, "_values", None) if state.is_update else None
    if name and columns:
        written.update(f"{name}.{getattr(col, 'key', col)}" for col in columns)
    else:
        written.add(name or ALL)


event.listen(_WriteSession, "after_flush", _note_flush)
event.listen(_WriteSession, "do_orm_execute", _note_statement)


class Database:
    """Holds the engines and hands out sessions: ``read()`` and ``write()``."""

    def __init__(self, url: str, *, echo: bool = False, timeout: float = 10.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.read_engine = create_async_engine(url, echo=echo, pool_size=8, max_overflow=8)
            self.write_engine = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=60)
            for eng, begin in ((self.read_engine, "BEGIN"), (self.write_engine, "BEGIN IMMEDIATE")):
                event.listen(eng.sync_engine, "connect", _sqlite_pragmas)
                event.listen(
                    eng.sync_engine,
                    "begin",
                    lambda conn, _sql=begin: conn.exec_driver_sql(_sql),
                )
        else:
            # pool_pre_ping: after a server restart every pooled connection is dead; each is
            # tested at checkout and replaced, so the pool recovers without a restart. The
            # timeouts bound how long a request waits for a connection (pool full, or a server
            # that does not answer) before it gets a 503.
            engine = create_async_engine(
                url,
                echo=echo,
                pool_size=20,
                max_overflow=20,
                pool_pre_ping=True,
                pool_timeout=timeout,
                connect_args={"timeout": timeout},
            )
            self.read_engine = engine
            self.write_engine = engine
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False, sync_session_class=_WriteSession)
        self.caches = ReadCaches()

    @property
    def engine(self) -> AsyncEngine:
        return self.write_engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries; nothing it does is committed."""
        async with self._read() as session:
            try:
                yield session
            except Exception as exc:
                if database_unavailable(exc):
                    raise _unavailable(exc) from exc
                raise
        # Closing (not rolling back) keeps loaded objects usable after the block;
        # the pool resets the connection's transaction on return.

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back on any error."""
        async with self._write() as session:
            session.sync_session.info[PARTITIONS] = self.caches.partitions
            try:
                async with session.begin():
                    yield session
            except IntegrityError:
                raise
            except Exception as exc:
                if database_unavailable(exc):
                    # Whether a commit cut short took effect is unknown: clients retry with
                    # their Idempotency-Key, which answers with what was made, not a twin.
                    raise _unavailable(exc) from exc
                raise
            written = session.sync_session.info.pop(WRITTEN, None)
        if written:  # committed: forget cached reads of these tables (here, then elsewhere)
            await self.caches.committed(frozenset(written))

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()


def _unavailable(exc: Exception) -> ApiError:
    log.warning("database unavailable: %r", exc)
    return database_unavailable_error()


def make_nullpool_engine(url: str) -> AsyncEngine:
    """An engine for one-off tools (migrations) that must not keep connections."""
    return create_async_engine(url, poolclass=NullPool)
