#!/usr/bin/env python3
"""Damaged cache media over NBD, as a user meets it (docs/reliability.md, "Damaged media"):

  1. `wb serve` mode 0 on fresh files; write --write-mib MiB of random data in 1 MiB writes, each followed by
     an NBD flush (every segment durable); SIGTERM (a clean stop, exit 0);
  2. flip --flips random bytes of the cache file, one bit each, in the segments written (--where data: only
     in data blocks; any: anywhere in those slots, metadata included), with --seed;
  3. `wb serve` again (if it refuses the cache, the refusal is printed, and with --accept-loss it is retried
     with that flag); read every block written and count how each reads: as written, stale (anything else:
     older data — a silent revert), or an error (EIO);
  4. print one JSON line.

  bench/damaged-cache.py --wb src/Writeboost.Cli/bin/Release/net10.0/wb --seed 1
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
BLOCK = 4096
SEGMENT = 512 << 10           # segment_size_order 10
SUPERBLOCK_REGION = MIB


def serve(wb, table, sock, extra=()):
    proc = subprocess.Popen([wb, "serve", *table, "--socket", sock, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            return None, proc.stderr.read()
        if "ready" in line:
            return proc, None


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return proc.returncode, proc.stderr.read()


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.handle = 0
        self.recv(18)
        self.s.sendall(struct.pack(">I", 3))
        self.s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 6) + struct.pack(">IH", 0, 0))
        while True:
            head = self.recv(20)
            kind, length = struct.unpack(">II", head[12:20])
            self.recv(length)
            if kind == 1:
                return

    def recv(self, n):
        data = bytearray()
        while len(data) < n:
            chunk = self.s.recv(n - len(data))
            if not chunk:
                raise EOFError("server closed the connection")
            data += chunk
        return bytes(data)

    def request(self, kind, offset, length, payload=b""):
        self.handle += 1
        self.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, kind, self.handle, offset, length) + payload)
        reply = self.recv(16)
        error = struct.unpack(">I", reply[4:8])[0]
        data = self.recv(length) if kind == 0 and error == 0 else b""
        return error, data

    def close(self):
        self.s.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wb", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flips", type=int, default=64)
    parser.add_argument("--cache-mib", type=int, default=64)
    parser.add_argument("--write-mib", type=int, default=60)
    parser.add_argument("--where", choices=["data", "any"], default="any")
    parser.add_argument("--accept-loss", action="store_true", help="if the cache is refused, serve it again with --accept-loss")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as work:
        backing, cache, sock = (os.path.join(work, n) for n in ("backing.img", "cache.img", "nbd.sock"))
        for path, size in ((backing, 2 * args.write_mib * MIB), (cache, args.cache_mib * MIB)):
            with open(path, "wb") as f:
                f.truncate(size)
        table = ["0", backing, cache]
        written = bytearray(rng.randbytes(args.write_mib * MIB))
        proc, refused = serve(args.wb, table, sock)
        client = Client(sock)
        for i in range(args.write_mib):
            assert client.request(1, i * MIB, MIB, bytes(written[i * MIB:(i + 1) * MIB]))[0] == 0
            assert client.request(3, 0, 0)[0] == 0
        client.close()
        code, _ = stop(proc)
        assert code == 0, f"SIGTERM: exit {code}"

        segments = (args.write_mib * MIB // BLOCK + 126) // 127 + args.write_mib  # 127-block segments, one partial per flush
        used = min(segments, (args.cache_mib * MIB - SUPERBLOCK_REGION) // SEGMENT)
        flips = []
        with open(cache, "r+b") as f:
            for _ in range(args.flips):
                slot = rng.randrange(used)
                within = rng.randrange(BLOCK, SEGMENT) if args.where == "data" else rng.randrange(SEGMENT)
                at = SUPERBLOCK_REGION + slot * SEGMENT + within
                bit = rng.randrange(8)
                f.seek(at)
                byte = f.read(1)[0]
                f.seek(at)
                f.write(bytes([byte ^ (1 << bit)]))
                flips.append(at)

        proc, refused = serve(args.wb, table, sock)
        accepted = False
        if proc is None and args.accept_loss:
            proc, again = serve(args.wb, table, sock, ["--accept-loss"])
            accepted = proc is not None
            refused = refused if proc is not None else again
        result = {"wb": args.wb, "seed": args.seed, "flips": args.flips, "where": args.where, "write_mib": args.write_mib,
                  "cache_mib": args.cache_mib, "refused": refused.strip().splitlines()[-1] if refused else None, "accepted_loss": accepted}
        if proc is not None:
            client = Client(sock)
            ok = stale = errors = 0
            stale_sectors = 0
            for b in range(args.write_mib * MIB // BLOCK):
                error, data = client.request(0, b * BLOCK, BLOCK)
                if error:
                    errors += 1
                elif data == written[b * BLOCK:(b + 1) * BLOCK]:
                    ok += 1
                else:
                    stale += 1
                    stale_sectors += sum(1 for s in range(0, BLOCK, 512) if data[s:s + 512] != written[b * BLOCK + s:b * BLOCK + s + 512])
            client.close()
            code, report = stop(proc)
            result.update({"blocks": ok + stale + errors, "read_back": ok, "stale_blocks": stale, "stale_sectors": stale_sectors,
                           "eio_blocks": errors, "stale_percent_of_sectors": round(100.0 * stale_sectors / (args.write_mib * MIB // 512), 2),
                           "server_report_lines": [l for l in report.splitlines() if l.startswith(("recovery: segment", "degraded"))][:5]})
        print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
