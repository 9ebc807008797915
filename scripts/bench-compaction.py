#!/usr/bin/env python3
"""Times the scheduled compaction's VACUUM on a node-shaped SQLite file.

Builds a file with the real migrations (crates/storage/migrations/sqlite),
then N members' rows written one member after the other with random keys,
as a node writes them: per member the account, 6 vault records (552 B),
2 consents (2,434 B bodies) with 2 envelopes each (561 B), a trust
enrolment and 8 audit entries (553 B). Then VACUUM and a TRUNCATE
checkpoint, as `Store::compact_if_written` runs them (WAL, synchronous
FULL, secure_delete), RUNS times: the first on the file as written, the
next on a file already in key order (a node's hourly case: most of the
file was compacted an hour ago). Uses Python's sqlite3 (the same C library
the node links, at -O2/-O3). Usage:

    scripts/bench-compaction.py MEMBERS PATH [RUNS]
"""
import glob
import os
import sqlite3
import sys
import time

HOUR = 3_600_000


def build(n, path):
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute("PRAGMA secure_delete=ON")
    here = os.path.dirname(os.path.abspath(__file__))
    for f in sorted(glob.glob(os.path.join(here, "../crates/storage/migrations/sqlite/*.sql"))):
        c.executescript(open(f).read())
    r = os.urandom
    seq = 0
    t0 = time.time()
    c.execute("BEGIN")
    for i in range(n):
        at = i * 60_000
        hour = at // HOUR * HOUR
        c.execute(
            "INSERT INTO members (member_id, email_index, email_ct, state, created_at, "
            "passphrase_wrap, recovery_wrap, audit_salt) VALUES (?, ?, ?, 'active', ?, ?, ?, ?)",
            (r(16), r(32), r(80), at // 86_400_000 * 86_400_000, r(105), r(105), r(16)),
        )
        for k in range(6):
            c.execute(
                "INSERT INTO vault_records (record_id, member_loc, revision, created_at, "
                "updated_at, ciphertext, ord) VALUES (?, ?, 1, ?, ?, ?, ?)",
                (r(16), r(32), hour, hour, r(552), k),
            )
        for _ in range(2):
            cid = r(16)
            slot = int.from_bytes(cid[8:], "big") & 0x0FFF_FFFF_FFFF_FFFF
            c.execute(
                "INSERT INTO consents (consent_id, request_id, org_id, member_loc, member_ct, "
                "status, version, given_at, expires_at, body, loc_scoped, slot) "
                "VALUES (?, ?, ?, ?, ?, 'given', 1, ?, ?, ?, 1, ?)",
                (cid, r(16), r(16), r(32), r(57), hour, hour + 1000 * HOUR, r(2434), slot),
            )
            for cat in ("region", "interest"):
                c.execute(
                    "INSERT INTO consent_envelopes VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (cid, r(16), cat, hour + 1000 * HOUR, hour, r(561), r(32)),
                )
        c.execute("INSERT INTO trust_enrolments VALUES (?, NULL, ?, ?)", (r(32), r(100), hour))
        for _ in range(8):
            seq += 1
            c.execute(
                "INSERT INTO audit_log (seq, at, subject, event, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (seq, hour, r(16), r(553), r(32), r(32)),
            )
        if i % 1000 == 999:
            c.execute("COMMIT")
            c.execute("BEGIN")
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    print(f"{n} members: {os.path.getsize(path) / 1e6:.0f} MB, built in {time.time() - t0:.0f} s")


def compact(path, runs):
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("PRAGMA secure_delete=ON")
    for run in range(runs):
        t = time.time()
        c.execute("VACUUM")
        v = time.time() - t
        t = time.time()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        k = time.time() - t
        print(f"run {run + 1}, {os.path.getsize(path) / 1e6:.0f} MB: VACUUM {v:.2f} s, checkpoint {k:.2f} s")


if __name__ == "__main__":
    build(int(sys.argv[1]), sys.argv[2])
    compact(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
