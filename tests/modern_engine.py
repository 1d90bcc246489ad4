"""Runs SQL on a modern ClickHouse engine (chdb, ClickHouse 26.x in-process).

Reads a JSON object from stdin: {"statements": [sql, ...], "queries": {name: sql}}.
Runs the statements in order in one session, then each query in JSONEachRow, and
prints {"version": ..., "results": {name: [row, ...]}} on stdout. Any failure is an
exception naming the statement, and a non-zero exit.
"""
import json
import sys
import tempfile

from chdb import session


def main() -> None:
    spec = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as d:
        s = session.Session(d)
        version = str(s.query("SELECT version()", "CSV")).strip().strip('"')
        for sql in spec["statements"]:
            try:
                s.query(sql)
            except Exception as e:  # noqa: BLE001 - report which statement failed
                raise SystemExit(f"statement failed: {sql[:200]}: {e}")
        results = {}
        for name, sql in spec["queries"].items():
            try:
                out = str(s.query(sql, "JSONEachRow"))
            except Exception as e:  # noqa: BLE001
                raise SystemExit(f"query {name} failed: {sql[:200]}: {e}")
            results[name] = [json.loads(line) for line in out.splitlines() if line.strip()]
        s.close()
    json.dump({"version": version, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
