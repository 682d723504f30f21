"""What PostgreSQL's TOAST compression costs a large JSON state (why migration 0006 exists).

    .venv/bin/python bench/pg_toast.py

Upserts a ~400 KB JSON document of 20,000 floats (the shape of a 1,000-row, 20-feature row
sample written as JSON numbers) and a ~210 KB document of the same floats as base64 (how
row samples are saved now) into a ``json`` column stored three ways: compressed with pglz
(PostgreSQL's default), compressed with lz4, and uncompressed out of line (``STORAGE
EXTERNAL``). Reported: the median time of 50 upserts of each. PostgreSQL is a throwaway
cluster started here (scripts/postgres).
"""

from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services.postgres import start_postgres

UPSERTS = 50
STORAGES = {
    "pglz": "ALTER TABLE t ALTER COLUMN v SET COMPRESSION pglz",
    "lz4": "ALTER TABLE t ALTER COLUMN v SET COMPRESSION lz4",
    "uncompressed": "ALTER TABLE t ALTER COLUMN v SET STORAGE EXTERNAL",
}


def main() -> None:
    values = np.random.default_rng(1).normal(size=20_000)
    documents = {
        "JSON numbers": orjson.dumps({"rows": values.reshape(1000, 20).tolist()}).decode(),
        "base64 float64": orjson.dumps({"rows_f64": base64.b64encode(values.tobytes())
                                        .decode()}).decode(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = start_postgres(Path(tmp) / "pg")
        try:
            url = make_url(server.url)
            with psycopg.connect(host=url.host, port=url.port, user=url.username,
                                 password=url.password, dbname=url.database,
                                 autocommit=True) as conn:
                version = conn.execute("SHOW server_version").fetchone()
                print(f"PostgreSQL {version[0] if version else '?'}, "
                      f"median of {UPSERTS} upserts")
                for storage, statement in STORAGES.items():
                    for name, document in documents.items():
                        conn.execute("DROP TABLE IF EXISTS t")
                        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v json)")
                        conn.execute(statement)
                        times = []
                        for i in range(UPSERTS):
                            started = time.perf_counter()
                            conn.execute("INSERT INTO t VALUES (%s, %s) ON CONFLICT (id) "
                                         "DO UPDATE SET v = excluded.v", (i % 5, document))
                            times.append(time.perf_counter() - started)
                        print(f"{storage:13s} {name:15s} {len(document):8,d} bytes  "
                              f"{statistics.median(times) * 1000:6.1f} ms")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
