"""SQLite on disk: every resource, log line and status change, so a restart loses nothing.

Resources are JSON documents keyed by (kind, id) and scoped by account and region, the way
moto keys its backends. Status also lives in its own column so recovery can query it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL,
    parent TEXT, status TEXT, doc TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (kind, id, account, region)
);
CREATE INDEX IF NOT EXISTS records_parent ON records (kind, parent);
CREATE INDEX IF NOT EXISTS records_status ON records (kind, status);
CREATE TABLE IF NOT EXISTS logs (
    kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (kind, id, seq)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    status TEXT, detail TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Database:
    def __init__(self, path: Path, account: str, region: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.account = account
        self.region = region
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate_unscoped_records()
        self._conn.executescript(_SCHEMA)

    def _migrate_unscoped_records(self) -> None:
        """Files written before records were keyed by account and region get the scoped key."""
        columns = self._conn.execute("PRAGMA table_info(records)").fetchall()
        if [c[1] for c in sorted((c for c in columns if c[5]), key=lambda c: c[5])] != ["kind", "id"]:
            return
        self._conn.executescript(
            "BEGIN; DROP INDEX IF EXISTS records_parent; DROP INDEX IF EXISTS records_status;"
            " ALTER TABLE records RENAME TO records_unscoped;" + _SCHEMA +
            " INSERT INTO records SELECT kind, id, account, region, parent, status, doc, created, updated"
            " FROM records_unscoped; DROP TABLE records_unscoped; COMMIT;"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # ------------------------------------------------------------ records

    def put(self, kind: str, id: str, doc: dict, parent: str | None = None) -> dict:
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT INTO records (kind, id, account, region, parent, status, doc, created, updated)"
                " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (kind, id, account, region) DO UPDATE SET"
                " parent=excluded.parent, status=excluded.status, doc=excluded.doc, updated=excluded.updated",
                (kind, id, self.account, self.region, parent, doc.get("status"), json.dumps(doc), now, now),
            )
        return doc

    def get(self, kind: str, id: str) -> dict | None:
        rows = self._query(
            "SELECT doc FROM records WHERE kind=? AND id=? AND account=? AND region=?",
            (kind, id, self.account, self.region),
        )
        return json.loads(rows[0][0]) if rows else None

    def update(self, kind: str, id: str, **changes: Any) -> dict:
        """Read-modify-write under the lock, so concurrent updaters never lose each other's fields."""
        with self._lock:
            doc = self.get(kind, id)
            if doc is None:
                raise KeyError(f"{kind} {id}")
            doc.update(changes)
            row = self._query("SELECT parent FROM records WHERE kind=? AND id=? AND account=? AND region=?",
                              (kind, id, self.account, self.region))
            return self.put(kind, id, doc, parent=row[0][0] if row else None)

    def delete(self, kind: str, id: str) -> None:
        self._query("DELETE FROM records WHERE kind=? AND id=? AND account=? AND region=?",
                    (kind, id, self.account, self.region))

    def list(self, kind: str, parent: str | None = None, statuses: list[str] | None = None) -> list[dict]:
        sql = "SELECT doc FROM records WHERE kind=? AND account=? AND region=?"
        args: list = [kind, self.account, self.region]
        if parent is not None:
            sql += " AND parent=?"
            args.append(parent)
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        sql += " ORDER BY created"
        return [json.loads(r[0]) for r in self._query(sql, tuple(args))]

    def next_number(self, name: str) -> int:
        with self._lock:
            self._conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (name,),
            )
            return self._query("SELECT value FROM counters WHERE name=?", (name,))[0][0]

    # ------------------------------------------------------------ service-owned tables

    def execute_script(self, script: str) -> None:
        """Lets a service create its own tables (CREATE ... IF NOT EXISTS) in this file."""
        with self._lock:
            self._conn.executescript(script)

    def execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._query(sql, args)

    def execute_many(self, sql: str, rows: list[tuple]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------ logs

    def append_log(self, kind: str, id: str, text: str) -> int:
        with self._lock:
            rows = self._query("SELECT COALESCE(MAX(seq), 0) FROM logs WHERE kind=? AND id=?", (kind, id))
            seq = rows[0][0] + 1
            self._conn.execute(
                "INSERT INTO logs (kind, id, seq, ts, text) VALUES (?,?,?,?,?)",
                (kind, id, seq, time.time(), text),
            )
            return seq

    def read_log(self, kind: str, id: str, after: int = 0) -> list[tuple[int, str]]:
        return self._query(
            "SELECT seq, text FROM logs WHERE kind=? AND id=? AND seq>? ORDER BY seq", (kind, id, after)
        )

    def log_text(self, kind: str, id: str) -> str:
        return "".join(text for _seq, text in self.read_log(kind, id))

    # ------------------------------------------------------------ event feed

    def add_event(self, kind: str, id: str, status: str | None, detail: dict | None = None) -> int:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO events (ts, kind, id, status, detail) VALUES (?,?,?,?,?)",
                (time.time(), kind, id, status, json.dumps(detail or {})),
            )
            return int(cur.lastrowid)

    def events_after(self, seq: int, limit: int = 500) -> list[dict]:
        rows = self._query(
            "SELECT seq, ts, kind, id, status, detail FROM events WHERE seq>? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [
            {"seq": r[0], "ts": r[1], "kind": r[2], "id": r[3], "status": r[4], "detail": json.loads(r[5])}
            for r in rows
        ]

    def last_event_seq(self) -> int:
        return self._query("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0]

    def iter_kinds(self) -> Iterator[str]:
        for (kind,) in self._query("SELECT DISTINCT kind FROM records"):
            yield kind
