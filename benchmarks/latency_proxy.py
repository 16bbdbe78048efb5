"""A TCP link with a fixed round-trip time, for benchmarks that compare requests as over a network.

On loopback a request costs only the client's and the server's CPU, so a ratio of two request
patterns measures CPU, not round trips. This proxy holds every chunk it relays for half the
round-trip time in each direction (chunks keep their order and are not delayed behind each other,
as on a real link), so one HTTP request costs at least one round trip more than on loopback.

Runs as its own process (the benchmark's interpreter stays free for the client):
``python benchmarks/latency_proxy.py UPSTREAM_PORT RTT_MS`` prints the port it listens on.
"""

from __future__ import annotations

import asyncio
import sys
import time


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk sent ``delay`` seconds after it arrived."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        while data := await reader.read(1 << 16):
            queue.put_nowait((time.monotonic() + delay, data))
        queue.put_nowait((time.monotonic() + delay, b""))

    receiving = asyncio.ensure_future(receive())
    try:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        receiving.cancel()
        writer.close()


async def _serve(upstream_port: int, rtt: float) -> None:
    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pipe(client_reader, server_writer, rtt / 2),
            _pipe(server_reader, client_writer, rtt / 2),
            return_exceptions=True,
        )

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    upstream_port, rtt_ms = int(sys.argv[1]), float(sys.argv[2])
    asyncio.run(_serve(upstream_port, rtt_ms / 1000))


if __name__ == "__main__":
    main()
