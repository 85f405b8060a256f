#!/usr/bin/env python3
"""The soak test's own NBD client (bench/soak.sh): what fio's nbd engine cannot do.

fio 3.x's nbd engine never sets NBD_CMD_FLAG_FUA (every write goes out with flags 0; --sync, --write_barrier
and --fdatasync change nothing on the wire; only --fsync=N sends NBD_CMD_FLUSH). This client sends FUA writes,
plain writes and flushes, one request at a time, and keeps a ledger of which writes were acknowledged, which
were FUA and which a completed flush covers, so that after a kill -9 of the server it can check exactly what
the durability contract promises:

  run     write (mixed FUA / plain / WRITE_ZEROES / flush) over a region until a deadline or until the server goes away;
          read back and check as it goes; at the end flush and check every block it wrote. Saves the ledger.
  check   after a crash: every 4 KiB block must hold its last durable write or a later one (acknowledged or in
          flight); --durable acked (mode 1: every acknowledged write) or fua (mode 0: FUA, or acknowledged
          before a completed flush). Blocks with no durable write are skipped (their old content is unknown).
  digest  SHA-256 of byte ranges of the export (a quiesced, flushed region must read back identical later).
  corrupt overwrite a range with zeros (FUA): the negative control, to show the checks catch damage.
  fio-summary  one TSV line from a fio JSON output (which may start with "fio: connected to NBD server").
  report  read what soak.sh left in its work directory: the summary, the JSON line, the exit code.

Every block written carries a header (magic, seed, seq, block number), so a mismatch says which write it holds.
"""
import argparse
import hashlib
import json
import random
import socket
import struct
import sys
import time

BLOCK = 4096
MAGIC = b"WBSOAK01"
NBD_REQUEST_MAGIC = 0x25609513
NBD_REPLY_MAGIC = 0x67446698
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_WRITE_ZEROES = 0, 1, 2, 3, 6
FLAG_FUA = 1


class Lost(Exception):
    """The connection broke (the server died)."""


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.handle = 0
        hello = self._recv(18)
        if hello[:16] != b"NBDMAGICIHAVEOPT":
            raise SystemExit("not a fixed-newstyle NBD server")
        self.sock.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
        self.sock.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 6) + struct.pack(">IH", 0, 0))  # NBD_OPT_GO ""
        self.size = None
        while True:
            _, _, rtype, length = struct.unpack(">QIII", self._recv(20))
            data = self._recv(length)
            if rtype == 3 and len(data) >= 12 and struct.unpack(">H", data[:2])[0] == 0:
                self.size = struct.unpack(">Q", data[2:10])[0]
            if rtype == 1:
                return
            if rtype & 0x80000000:
                raise SystemExit(f"NBD_OPT_GO refused: 0x{rtype:x}")

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError as e:
                raise Lost(str(e)) from e
            if not chunk:
                raise Lost("server closed the connection")
            buf += chunk
        return bytes(buf)

    def request(self, cmd, offset, length, payload=b"", flags=0):
        self.handle += 1
        try:
            self.sock.sendall(struct.pack(">IHHQQI", NBD_REQUEST_MAGIC, flags, cmd, self.handle, offset, length) + payload)
        except OSError as e:
            raise Lost(str(e)) from e
        magic, error, handle = struct.unpack(">IIQ", self._recv(16))
        if magic != NBD_REPLY_MAGIC or handle != self.handle:
            raise SystemExit(f"bad reply (magic 0x{magic:x}, handle {handle}, expected {self.handle})")
        if error:
            raise SystemExit(f"NBD error {error} for command {cmd} at {offset} length {length}")
        return self._recv(length) if cmd == CMD_READ else b""

    def read(self, offset, length):
        return self.request(CMD_READ, offset, length)

    def close(self):
        try:
            self.sock.sendall(struct.pack(">IHHQQI", NBD_REQUEST_MAGIC, 0, CMD_DISC, 0, 0, 0))
        except OSError:
            pass
        self.sock.close()


def block_data(seed, seq, blk, zero=False):
    if zero:
        return bytes(BLOCK)
    header = struct.pack(">8sQQQ", MAGIC, seed, seq, blk)
    return header + hashlib.shake_128(header).digest(BLOCK - len(header))


def describe(data, seed):
    magic, s, seq, blk = struct.unpack(">8sQQQ", data[:32])
    if magic != MAGIC:
        return "no soak header (zeros or foreign data)" if not any(data) else "no soak header"
    if s != seed:
        return f"a block of another client/phase (seed {s}, seq {seq}, block {blk})"
    intact = data == block_data(s, seq, blk)
    return f"write seq {seq} for block {blk}" + ("" if intact else " (header intact, body damaged)")


def cmd_run(a):
    rng = random.Random(a.seed)
    first = a.offset // BLOCK
    nblocks = a.size // BLOCK
    writes = []      # [seq, first block, count, fua, acked, zeroes]
    flushes = []     # seq marks: a completed flush covers every write acknowledged with seq <= mark
    latest = {}      # block -> (seq, zeroes) of the last acknowledged write
    touched = []     # the blocks in latest, in first-write order (for random read-back)
    stats = dict(writes=0, fua_writes=0, zeroes=0, flushes=0, bytes_written=0, bytes_read=0, verify_errors=0, lost=False, errors=[])

    def check_block(c, blk):
        data = c.read(blk * BLOCK, BLOCK)
        stats["bytes_read"] += BLOCK
        seq, zero = latest[blk]
        if data != block_data(a.seed, seq, blk, zero):
            stats["verify_errors"] += 1
            if len(stats["errors"]) < 5:
                stats["errors"].append(f"offset {blk * BLOCK}: expected write seq {seq}{' (zeroes)' if zero else ''}, found {describe(data, a.seed)}")

    c = Client(a.socket)
    deadline = time.monotonic() + a.seconds
    seq = 0
    try:
        while time.monotonic() < deadline:
            seq += 1
            count = rng.randint(1, 16)
            blk0 = first + rng.randrange(nblocks - count + 1)
            fua = rng.random() * 100 < a.fua_percent
            zero = rng.random() * 100 < a.zeroes_percent
            writes.append([seq, blk0, count, int(fua), 0, int(zero)])
            if zero:
                c.request(CMD_WRITE_ZEROES, blk0 * BLOCK, count * BLOCK, b"", FLAG_FUA if fua else 0)
            else:
                payload = b"".join(block_data(a.seed, seq, b) for b in range(blk0, blk0 + count))
                c.request(CMD_WRITE, blk0 * BLOCK, len(payload), payload, FLAG_FUA if fua else 0)
            writes[-1][4] = 1
            for b in range(blk0, blk0 + count):
                if b not in latest:
                    touched.append(b)
                latest[b] = (seq, zero)
            stats["writes"] += 1
            stats["fua_writes"] += int(fua)
            stats["zeroes"] += int(zero)
            stats["bytes_written"] += count * BLOCK
            if a.flush_every and seq % a.flush_every == 0:
                c.request(CMD_FLUSH, 0, 0)
                flushes.append(seq)
                stats["flushes"] += 1
            if seq % 16 == 0:
                check_block(c, blk0 + count - 1)          # just written: read-your-write
                check_block(c, rng.choice(touched))      # anything written before, maybe long written back
        c.request(CMD_FLUSH, 0, 0)
        flushes.append(seq)
        stats["flushes"] += 1
        for blk in sorted(latest):
            check_block(c, blk)
        c.close()
    except Lost as e:
        stats["lost"] = True
        stats["lost_reason"] = str(e)
    if a.state:
        with open(a.state, "w") as f:
            json.dump(dict(seed=a.seed, writes=writes, flushes=flushes), f)
    print(json.dumps(stats))
    if stats["verify_errors"]:
        return 1
    if stats["lost"] and not a.expect_crash:
        return 3
    return 0


def cmd_check(a):
    with open(a.state) as f:
        state = json.load(f)
    seed = state["seed"]
    flushes = state["flushes"]
    last_flush = max(flushes) if flushes else 0
    per_block = {}   # block -> [(seq, zeroes)] in seq order: its last durable write and every later one
    durable_blocks = set()
    for seq, blk0, count, fua, acked, zero in state["writes"]:
        durable = bool(acked) and (a.durable == "acked" or fua or seq <= last_flush)
        for b in range(blk0, blk0 + count):
            if durable:
                per_block[b] = [(seq, zero)]
                durable_blocks.add(b)
            else:
                per_block.setdefault(b, []).append((seq, zero))
    c = Client(a.socket)
    out = dict(blocks_checked=0, blocks_skipped=0, verify_errors=0, errors=[])
    for blk in sorted(per_block):
        history = per_block[blk]
        if blk not in durable_blocks:
            out["blocks_skipped"] += 1
            continue
        allowed = [f"{seq}{'z' if zero else ''}" for seq, zero in history]
        data = c.read(blk * BLOCK, BLOCK)
        out["blocks_checked"] += 1
        if not any(data == block_data(seed, s, blk, z) for s, z in history):
            out["verify_errors"] += 1
            if len(out["errors"]) < 5:
                out["errors"].append(f"offset {blk * BLOCK}: allowed write seq {allowed}, found {describe(data, seed)}")
    c.close()
    print(json.dumps(out))
    return 1 if out["verify_errors"] else 0


def cmd_digest(a):
    c = Client(a.socket)
    h = hashlib.sha256()
    chunk = 4 << 20
    for r in a.ranges:
        offset, length = (int(x) for x in r.split(":"))
        end = offset + length
        while offset < end:
            n = min(chunk, end - offset)
            h.update(c.read(offset, n))
            offset += n
    c.close()
    print(h.hexdigest())
    return 0


def cmd_corrupt(a):
    c = Client(a.socket)
    c.request(CMD_WRITE, a.offset, a.length, bytes(a.length), FLAG_FUA)
    c.close()
    return 0


def cmd_fio_summary(a):
    """phase client role iter seed rc verify_errors write_bytes read_bytes write_ios read_ios runtime_ms job_error"""
    text = open(a.json_file, errors="replace").read()
    errors = open(a.err_file, errors="replace").read() if a.err_file else ""
    verify_errors = sum(1 for line in (text + errors).splitlines()
                        if line.startswith("verify:") or "verify failed" in line or "bad magic header" in line)
    w = r = wi = ri = rt = 0
    job_error = -1
    try:
        doc = json.loads(text[text.index("{"):])
        for job in doc["jobs"]:
            w += job["write"]["io_bytes"]
            r += job["read"]["io_bytes"]
            wi += job["write"]["total_ios"]
            ri += job["read"]["total_ios"]
            rt = max(rt, job["job_runtime"])
            job_error = max(job_error, job["error"])
    except (ValueError, KeyError):
        pass  # killed mid-run (phase 2): no JSON; the exit code tells
    print("\t".join(str(x) for x in (*a.fields, verify_errors, w, r, wi, ri, rt, job_error)))
    return 0


def _result(path, what, notes):
    """(exists, result): whether the file is there, and its last JSON line; a missing result is noted."""
    try:
        open(path).close()
    except OSError:
        return False, None
    out = _last_json(path)
    if out is None:
        notes.append(f"{what}: no result ({open(path, errors='replace').read()[-300:].strip()})")
    return True, out


def _last_json(path):
    """The last line of a file that parses as a JSON object, or None."""
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def cmd_report(a):
    """Reads what bench/soak.sh left in its work directory; prints the summary (and the JSON); exit 0 iff all passed."""
    w = a.work_dir.rstrip("/") + "/"
    facts = {}
    for line in open(w + "facts"):
        key, _, value = line.rstrip("\n").partition("=")
        facts[key] = value
    clients = int(facts["clients"])
    mode = int(facts["mode"])
    failed = []

    def check(ok, name):
        if not ok:
            failed.append(name)

    if "fatal" in facts:
        failed.append(facts["fatal"])

    rows = []
    try:
        for line in open(w + "results.tsv"):
            f = line.rstrip("\n").split("\t")
            rows.append(dict(phase=f[0], idx=int(f[1]), role=f[2], it=int(f[3]), seed=f[4], rc=int(f[5]), verify_errors=int(f[6]),
                             w=int(f[7]), r=int(f[8]), wi=int(f[9]), ri=int(f[10]), runtime_ms=int(f[11]), job_error=int(f[12])))
    except OSError:
        pass
    phases = {}
    for p in ("1", "2", "3"):
        secs = float(facts.get(f"phase{p}_seconds", 0)) or 1.0
        phases[p] = dict(seconds=int(secs), fio_iterations=0, write_bytes=0, read_bytes=0, write_ios=0, read_ios=0,
                         flushes_and_fua_client_writes=0)
    verify_errors = 0
    fio_failures = 0
    notes = []
    for row in rows:
        p = row["phase"]
        verify_errors += row["verify_errors"]
        if row["rc"] != 0:
            fio_failures += 1
            notes.append(f"fio phase {p} client {row['idx']} ({row['role']}) iteration {row['it']} seed {row['seed']}: exit {row['rc']}, "
                         f"{row['verify_errors']} verify errors, job error {row['job_error']}")
        if p in phases:
            ph = phases[p]
            ph["fio_iterations"] += 1
            ph["write_bytes"] += row["w"]; ph["read_bytes"] += row["r"]; ph["write_ios"] += row["wi"]; ph["read_ios"] += row["ri"]
    # phase 2's fio clients were killed with the server: count what their JSON (if any) says, ignore their status
    for i in range(clients):
        doc = None
        try:
            text = open(f"{w}p2c{i}.out", errors="replace").read()
            doc = json.loads(text[text.index("{"):])
        except (OSError, ValueError):
            pass
        if doc:
            for job in doc["jobs"]:
                phases["2"]["write_bytes"] += job["write"]["io_bytes"]; phases["2"]["write_ios"] += job["write"]["total_ios"]
    client_failures = 0
    for p in ("1", "2", "3"):
        for i in range(clients):
            exists, out = _result(f"{w}p{p}c{i}.ledger.out", f"FUA client phase {p} client {i}", notes)
            if not exists:
                continue
            if out is None:
                client_failures += 1
                continue
            ph = phases[p]
            ph["write_bytes"] += out["bytes_written"]; ph["read_bytes"] += out["bytes_read"]; ph["write_ios"] += out["writes"]
            ph["flushes_and_fua_client_writes"] += out["writes"] + out["flushes"]
            if p != "2":
                verify_errors += out["verify_errors"]
                if out["verify_errors"] or out["lost"]:
                    client_failures += 1
                    notes.append(f"FUA client phase {p} client {i}: {out['verify_errors']} verify errors, lost={out['lost']} {out['errors']}")
    check(verify_errors == 0, "verify errors during phases 1 and 3 (fio, FUA client) or fio --verify_only after the crash")
    check(fio_failures == 0, "fio exit status 0 in phases 1 and 3 and in --verify_only")
    check(client_failures == 0, "FUA client finished cleanly in phases 1 and 3")
    for p in ("1", "3"):
        check(phases[p]["write_ios"] > 0, f"phase {p} did some writes")

    crash = dict(recovered=facts.get("recovered") == "1", digest_match=None, ledger_blocks_checked=0, ledger_blocks_skipped=0,
                 ledger_errors=0)
    if "kill9_at_seconds" in facts:
        crash["digest_match"] = facts.get("digest_before") is not None and facts.get("digest_before") == facts.get("digest_after")
        check(crash["recovered"], "server ready after kill -9 (recovery)")
        check(crash["digest_match"], "phase-1 regions read back identical after kill -9 + recovery (SHA-256)")
        for i in range(clients):
            for p in ("1", "2"):
                exists, out = _result(f"{w}crash-p{p}c{i}.check", f"ledger check phase {p} client {i}", notes)
                if not exists:
                    continue
                if out is None:
                    crash["ledger_errors"] += 1
                    continue
                crash["ledger_blocks_checked"] += out["blocks_checked"]
                crash["ledger_blocks_skipped"] += out["blocks_skipped"]
                crash["ledger_errors"] += out["verify_errors"]
                if out["verify_errors"]:
                    notes.append(f"ledger check phase {p} client {i} after kill -9: {out['verify_errors']} blocks lost: {out['errors']}")
        check(crash["ledger_errors"] == 0, "every durable write of the FUA client survived kill -9 ("
              + ("every acknowledged write" if mode == 1 else "FUA or acknowledged before a completed flush") + ")")
        verify_errors += crash["ledger_errors"]

    code = facts.get("server_exit_code")
    code = int(code) if code is not None and code.isdigit() else code   # "timeout" when it did not exit in 60 s
    check(code == 0, "SIGTERM: wb serve drained and exited 0")

    samples = []
    try:
        for line in open(w + "rss.samples"):
            t, pid, hwm, rss = line.split()
            samples.append((int(t), int(pid), int(hwm), int(rss)))
    except (OSError, ValueError):
        pass
    peak_kib = max((s[2] for s in samples), default=0)
    cache_mib = int(facts["cache_mib"])
    peak_mib = round(peak_kib / 1024, 1)
    per_server = {}
    for t, pid, hwm, rss in samples:
        per_server.setdefault(pid, []).append((t, hwm, rss))
    servers = [dict(pid=pid, peak_rss_mib=round(max(h for _, h, _ in v) / 1024, 1),
                    first_rss_mib=round(v[0][2] / 1024, 1), last_rss_mib=round(v[-1][2] / 1024, 1), samples=len(v))
               for pid, v in per_server.items()]
    check(peak_kib > 0, "RSS of wb serve sampled")
    check(peak_mib <= int(facts["max_rss_mib"]), f"peak RSS within --max-rss-mib {facts['max_rss_mib']}")

    status = None
    try:
        status = json.load(open(w + "status.json"))["status"]
    except (OSError, ValueError, KeyError):
        pass
    laps = wb_laps = None
    if status:
        laps = round(status["current_id"] / status["nr_segments"], 2)
        wb_laps = round(status["last_writeback_id"] / status["nr_segments"], 2)
        check(status["failure"] is None, "the device did not fail (wb status: failure null)")
        check(status["writeback_errors"] == 0, "no writeback errors")
        check(laps >= 1, "the cache ring wrapped at least once")
        check(status["last_writeback_id"] > 0, "the writeback worker ran")
    elif "fatal" not in facts:
        failed.append("wb status --json after the run")

    user_bytes = sum(ph["write_bytes"] for ph in phases.values())
    secs_total = int(facts.get("total_seconds", 0))
    for ph in phases.values():
        ph["write_iops"] = round(ph["write_ios"] / max(ph["seconds"], 1))
        ph["write_mib_per_s"] = round(ph["write_bytes"] / 1048576 / max(ph["seconds"], 1), 1)
    result = dict(
        mode=mode, seconds=int(facts["seconds"]), elapsed_seconds=secs_total, clients=clients,
        passed=not failed, failed_checks=failed,
        verify_errors=verify_errors, fio_failures=fio_failures, client_failures=client_failures,
        kill9_at_seconds=int(facts["kill9_at_seconds"]) if "kill9_at_seconds" in facts else None,
        recovered=crash["recovered"], restart_ready_seconds=float(facts["serve2_ready_seconds"]) if "serve2_ready_seconds" in facts else None,
        phase1_digest_match=crash["digest_match"], crash_ledger_blocks_checked=crash["ledger_blocks_checked"],
        crash_ledger_blocks_skipped=crash["ledger_blocks_skipped"], crash_ledger_errors=crash["ledger_errors"],
        server_exit_code=code,
        peak_rss_mib=peak_mib, cache_mib=cache_mib, peak_rss_mib_per_gib_cache=round(peak_mib / (cache_mib / 1024), 1),
        servers=servers,
        user_bytes_written=user_bytes, user_bytes_read=sum(ph["read_bytes"] for ph in phases.values()),
        cache_laps=laps, writeback_laps=wb_laps,
        segments_logged=status["current_id"] if status else None,
        segments_written_back=status["last_writeback_id"] if status else None,
        nr_segments=status["nr_segments"] if status else None,
        phases=phases, table=facts.get("table"), commit=facts.get("commit"), work_dir=a.work_dir,
    )
    out = sys.stdout
    print(f"soak: mode {mode}, {clients} clients, {secs_total}s (asked {facts['seconds']}s), table: {facts.get('table')}", file=out)
    for p, ph in phases.items():
        label = {"1": "phase 1 (verify)", "2": "phase 2 (crash load)", "3": "phase 3 (verify)"}[p]
        print(f"  {label:22} {ph['seconds']:5}s  {ph['write_bytes'] / 1048576:9.0f} MiB written  {ph['read_bytes'] / 1048576:9.0f} MiB read"
              f"  {ph['write_iops']:6} write IOPS  {ph['fio_iterations']:4} fio runs", file=out)
    if "kill9_at_seconds" in facts:
        print(f"  kill -9 at +{facts['kill9_at_seconds']}s; recovered: {crash['recovered']} (ready in {facts.get('serve2_ready_seconds', '?')}s); "
              f"phase-1 SHA-256 identical: {crash['digest_match']}; FUA-client ledger: {crash['ledger_blocks_checked']} blocks checked, "
              f"{crash['ledger_errors']} lost", file=out)
    print(f"  verify errors {verify_errors}, fio failures {fio_failures}, client failures {client_failures}, SIGTERM exit {code}", file=out)
    if status:
        print(f"  ring: {status['current_id']} segments logged = {laps} laps of {status['nr_segments']}; "
              f"{status['last_writeback_id']} written back ({wb_laps} laps)", file=out)
    print(f"  peak RSS {peak_mib} MiB = {result['peak_rss_mib_per_gib_cache']} MiB per GiB of cache ({cache_mib} MiB cache); per server: "
          + ", ".join(f"{s['peak_rss_mib']} MiB (rss {s['first_rss_mib']} -> {s['last_rss_mib']})" for s in servers), file=out)
    for note in notes[:20]:
        print(f"  ! {note}", file=out)
    if failed:
        for name in failed:
            print(f"soak: FAILED check: {name}", file=out)
    else:
        print("soak: PASSED", file=out)
    if a.json == "1":
        print(json.dumps(result), file=out)
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--socket", required=True)
    r.add_argument("--offset", type=int, required=True)
    r.add_argument("--size", type=int, required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--fua-percent", type=float, default=50)
    r.add_argument("--flush-every", type=int, default=32)
    r.add_argument("--zeroes-percent", type=float, default=5, help="share of NBD_CMD_WRITE_ZEROES among the writes")
    r.add_argument("--state")
    r.add_argument("--expect-crash", action="store_true")
    k = sub.add_parser("check")
    k.add_argument("--socket", required=True)
    k.add_argument("--state", required=True)
    k.add_argument("--durable", choices=["acked", "fua"], required=True)
    d = sub.add_parser("digest")
    d.add_argument("--socket", required=True)
    d.add_argument("ranges", nargs="+", help="OFFSET:LENGTH in bytes")
    x = sub.add_parser("corrupt")
    x.add_argument("--socket", required=True)
    x.add_argument("--offset", type=int, required=True)
    x.add_argument("--length", type=int, required=True)
    s = sub.add_parser("fio-summary")
    s.add_argument("json_file")
    s.add_argument("err_file")
    s.add_argument("fields", nargs="*")
    rp = sub.add_parser("report")
    rp.add_argument("work_dir")
    rp.add_argument("--json", default="0")
    a = p.parse_args()
    return {"run": cmd_run, "check": cmd_check, "digest": cmd_digest, "corrupt": cmd_corrupt,
            "fio-summary": cmd_fio_summary, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
