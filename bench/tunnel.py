"""TCP tunnel benchmark: bytes and round trips through `labspace port-forward` and the proxy's
WebSocket tunnel, against the same TCP service reached directly, in one run.

    .venv/bin/python bench/tunnel.py [--megabytes 200] [--pings 500] [--rounds 3]

Three processes on loopback, as in use: the proxy (bench/proxy.py's, with a static route to
this machine), the real `labspace port-forward` client, and this script with the services: a
sink that counts what it receives until the sender's end and answers the count, and an echo
for one-byte round trips. Prints throughput (MB/s, median of rounds) direct and tunnelled with
their ratio (target >= 0.7x), and the round trip's median, direct and tunnelled (target: the
tunnel adds <= 1 ms). Bounded: every transfer and wait has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from proxy import TOKEN, free_port, wait_listening  # noqa: E402

CHUNK = 256 * 1024


async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    total = 0
    while data := await reader.read(CHUNK):
        total += len(data)
    writer.write(f"{total}\n".encode())
    await writer.drain()
    writer.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    writer.close()


async def throughput(port: int, megabytes: int) -> float:
    block = os.urandom(CHUNK)
    blocks = megabytes * 1024 * 1024 // CHUNK
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = time.perf_counter()
    for _ in range(blocks):
        writer.write(block)
        await writer.drain()
    writer.write_eof()
    counted = int((await asyncio.wait_for(reader.readline(), 120)).decode())
    elapsed = time.perf_counter() - began
    writer.close()
    assert counted == blocks * CHUNK, (counted, blocks * CHUNK)
    return blocks * CHUNK / elapsed / 1e6


async def round_trips(port: int, count: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        writer.write(b"x")
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(1), 10)
        samples.append(time.perf_counter() - began)
    writer.write_eof()  # the echo ends its side, then the connection closes
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return statistics.median(samples) * 1000


def forwarder(proxy_port: int, sink_port: int, echo_port: int) -> tuple[subprocess.Popen[str],
                                                                         int, int]:
    env = {**os.environ, "LABSPACE_TOKEN": TOKEN,
           "LABSPACE_URL": f"http://127.0.0.1:{proxy_port}"}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("labspace")), "port-forward", "bench/lab",
         f"0:{sink_port}", f"0:{echo_port}"], env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    bound = [int(process.stdout.readline().split(" ")[0].rsplit(":", 1)[1]) for _ in range(2)]
    return process, bound[0], bound[1]


async def bench(args: argparse.Namespace) -> None:
    sink_server = await asyncio.start_server(sink, "127.0.0.1", 0)
    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    sink_port = sink_server.sockets[0].getsockname()[1]
    echo_port = echo_server.sockets[0].getsockname()[1]
    proxy_port = free_port()
    src = str(HERE.parents[1] / "src")
    proxy = subprocess.Popen([sys.executable, str(HERE.parent / "proxy.py"), "_proxy",
                              str(proxy_port), str(sink_port), str(free_port()), src],
                             env={**os.environ, "PYTHONPATH": src})
    try:
        wait_listening(proxy_port, proxy)
        client, tunnel_sink, tunnel_echo = forwarder(proxy_port, sink_port, echo_port)
        try:
            direct, tunnelled = [], []
            for i in range(args.rounds):
                direct.append(await throughput(sink_port, args.megabytes))
                tunnelled.append(await throughput(tunnel_sink, args.megabytes))
                print(f"  round {i + 1}: direct {direct[-1]:.0f} MB/s, "
                      f"tunnel {tunnelled[-1]:.0f} MB/s", flush=True)
            d, t = statistics.median(direct), statistics.median(tunnelled)
            print(f"{args.megabytes} MB, median of {args.rounds}: direct {d:.0f} MB/s, "
                  f"tunnel {t:.0f} MB/s, ratio {t / d:.2f} (target >= 0.7)")
            here = await round_trips(echo_port, args.pings)
            there = await round_trips(tunnel_echo, args.pings)
            print(f"1-byte round trip, median of {args.pings}: direct {here:.3f} ms, tunnel "
                  f"{there:.3f} ms, +{there - here:.3f} ms (target <= 1 ms)")
        finally:
            client.terminate()
            client.wait(10)
    finally:
        proxy.terminate()
        proxy.wait(10)
        sink_server.close()
        echo_server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=200, help="per transfer")
    parser.add_argument("--pings", type=int, default=500, help="round trips to time")
    parser.add_argument("--rounds", type=int, default=3, help="transfers each way")
    asyncio.run(bench(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
