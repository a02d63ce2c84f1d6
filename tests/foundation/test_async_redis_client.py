"""The asyncio Redis client (backend/redis.py) packs commands with hiredis: the same bytes on the wire as
redis-py's own packer, and every kind of command the project sends still works against the real Redis."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from backend.redis import HiredisConnection, HiredisSSLConnection, get_async_redis


@pytest.mark.parametrize(
    "command",
    [
        ("SET", "rd:key", "value", "EX", 5),
        (
            "EVALSHA",
            "0" * 40,
            4,
            "rd:drv:1",
            "rd:avail:default",
            b"bytes key",
            "rd:{default}:fixes",
            40.758,
            -73.9855,
        ),
        ("XADD", "rd:{default}:fixes", "MAXLEN", "~", 200_000, "*", "lat", repr(1 / 3), "t", 1.7e9),
        ("SCRIPT LOAD", "return 1"),  # a command name of two words goes as two arguments
        (b"CLIENT SETNAME", "rochdale"),
        ("SET", "rd:long", "x" * 10_000),
    ],
)
def test_hiredis_packs_what_redis_py_packs(command):
    ours = b"".join(HiredisConnection().pack_command(*command))
    theirs = b"".join(Connection().pack_command(*command))
    assert ours == theirs


def test_urls_pick_the_packing_connection(settings):
    settings.REDIS_URL = "redis://localhost:6379/3"
    assert get_async_redis().connection_pool.connection_class is HiredisConnection
    settings.REDIS_URL = "rediss://localhost:6380/3"
    assert get_async_redis().connection_pool.connection_class is HiredisSSLConnection


async def test_scripts_pipelines_and_streams_work_through_it():
    client = get_async_redis()
    try:
        connection = await client.connection_pool.get_connection()
        assert isinstance(connection, HiredisConnection)
        await client.connection_pool.release(connection)
        script = client.register_script("return {KEYS[1], ARGV[1]}")
        assert await script(keys=["rd:test:key"], args=[2.5]) == [b"rd:test:key", b"2.5"]
        pipe = client.pipeline(transaction=False)
        pipe.xadd("rd:test:stream", {"lat": "40.75", "t": 1.5})
        pipe.xlen("rd:test:stream")
        pipe.script_flush()
        _, length, flushed = await pipe.execute()
        assert length == 1 and flushed
        # After SCRIPT FLUSH the script is loaded again (EVALSHA's NOSCRIPT, then SCRIPT LOAD: two words).
        assert await script(keys=["k"], args=["v"]) == [b"k", b"v"]
    finally:
        await client.aclose()


def test_a_loop_shares_one_client_and_another_loop_gets_its_own():
    import asyncio

    from backend.redis import loop_async_redis

    async def two_calls() -> tuple[object, object]:
        first, second = loop_async_redis(), loop_async_redis()
        assert await first.ping() and await second.ping()
        return first, second

    first, second = asyncio.run(two_calls())
    assert first is second
    other, _ = asyncio.run(two_calls())
    assert other is not first
