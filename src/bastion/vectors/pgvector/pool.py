"""The pgvector engine's connections: psycopg's async pool, made on first use on the
event loop that serves (a pool belongs to one loop), closed from any thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool


class Connections:
    """Up to ``size`` autocommit connections to ``info`` (libpq form)."""

    def __init__(self, info: str, size: int) -> None:
        self.info = info
        self.size = size
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _opened(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        if self._pool is None:
            self._loop = asyncio.get_running_loop()
            self._pool = AsyncConnectionPool(
                self.info,
                min_size=1,
                max_size=self.size,
                kwargs={"autocommit": True},
                configure=_configure,
                open=False,
                name="bastion-vectors",
            )
        await self._pool.open()
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        pool = await self._opened()
        async with pool.connection() as conn:
            yield conn

    def close(self) -> None:
        """Close the pool (blocking; from any thread)."""
        pool, loop = self._pool, self._loop
        self._pool = self._loop = None
        if pool is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # called on the pool's own loop: it cannot wait for itself
            loop.create_task(pool.close())
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(pool.close(), loop).result(30)
        else:
            loop.run_until_complete(pool.close())

    async def aclose(self) -> None:
        pool, self._pool, self._loop = self._pool, None, None
        if pool is not None:
            await pool.close()


async def _configure(conn: AsyncConnection[Any]) -> None:
    """Every new pooled connection: pgvector's types, orjson for jsonb."""
    await register_vector_async(conn)
    set_json_loads(orjson.loads, conn)
    set_json_dumps(orjson.dumps, conn)
