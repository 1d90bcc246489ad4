"""Runs SQL on a modern ClickHouse engine (chdb, ClickHouse 26.x in-process).

Reads a JSON object from stdin: {"steps": [{"run": sql} | {"query": name, "sql": sql}]}.
Runs the steps in order in one session (queries in JSONEachRow) and prints
{"version": ..., "results": {name: [row, ...]}} on stdout. Any failure is an exception
naming the step, and a non-zero exit.
"""
import json
import sys
import tempfile

from chdb import session


def main() -> None:
    spec = json.load(sys.stdin)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        s = session.Session(d)
        version = str(s.query("SELECT version()", "CSV")).strip().strip('"')
        for step in spec["steps"]:
            sql = step.get("run") or step["sql"]
            try:
                if "run" in step:
                    s.query(sql)
                else:
                    out = str(s.query(sql, "JSONEachRow"))
                    results[step["query"]] = [
                        json.loads(line) for line in out.splitlines() if line.strip()
                    ]
            except Exception as e:  # noqa: BLE001 - report which step failed
                raise SystemExit(f"step failed: {sql[:300]}: {e}")
        s.close()
    json.dump({"version": version, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
