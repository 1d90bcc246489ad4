"""The peer wmtop's benchmark measures itself against: a loader written the way such
pipelines usually start, in Python with confluent-kafka and clickhouse-connect.

It reads a topic from the beginning in a group of its own, flattens each transaction's
hourly records into rows (identifiers filled from the transaction, camelCase fields into
snake_case columns, the hour from `timestamp`), inserts them in batches of 5,000 and
commits after each insert. It stops once every partition is read to its end and prints
one JSON line: {"rows": N, "messages": M}.

    loader.py --brokers HOST:PORT --topic T --group G --url http://HOST:PORT \
              --database D --table T
"""

import argparse
import json
import re
import sys
from datetime import datetime, timezone

import clickhouse_connect
from confluent_kafka import Consumer, KafkaError

BATCH = 5000
IDENTIFIERS = ("transactionName", "transactionId", "applicationId", "applicationName", "alias")
# Columns the table fills itself (or wmtop writes and a plain loader does not).
SKIPPED = {"record_version", "record_hash", "ingestion_time"}


def snake(name):
    """percentile95 -> percentile_95, ebOrResponseBreached -> eb_or_response_breached."""
    return re.sub(r"(?<=[a-z])(?=[0-9])|(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def converter(type_name):
    """How a JSON value becomes a value of this ClickHouse type."""
    t = type_name.replace("Nullable(", "").rstrip(")")
    if t == "String":
        return (lambda v: "" if v is None else str(v)) if type_name == "String" else (
            lambda v: None if v is None else str(v))
    if t.startswith("DateTime"):
        return lambda v: datetime.fromtimestamp(int(v) / 1000, tz=timezone.utc)
    if t in ("UInt8", "Bool"):
        return lambda v: None if v is None else int(v in (True, 1, "true", "1"))
    if "Int" in t:
        return lambda v: None if v in (None, "") else int(float(v))
    return lambda v: None if v in (None, "") else float(v)


def main():
    a = argparse.ArgumentParser()
    for flag in ("--brokers", "--topic", "--group", "--url", "--database", "--table"):
        a.add_argument(flag, required=True)
    args = a.parse_args()

    url = args.url.rstrip("/")
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    # ClickHouse 18.16 needs compression off and the column types given on insert.
    ch = clickhouse_connect.get_client(host=host, port=int(port), database=args.database, compress=False)
    described = ch.query(
        "SELECT name, type FROM system.columns WHERE database = %(d)s AND table = %(t)s",
        parameters={"d": args.database, "t": args.table},
    ).result_rows
    columns = [(n, t) for n, t in described if n not in SKIPPED]
    names = [n for n, _ in columns]
    types = [t for _, t in columns]
    index = {n: i for i, n in enumerate(names)}
    convert = [converter(t) for t in types]
    column_of = {}  # JSON key -> column index (or None)

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.subscribe([args.topic])

    rows, total, messages = [], 0, 0
    assigned, at_end = None, set()

    def flush():
        nonlocal rows, total
        if rows:
            ch.insert(args.table, rows, column_names=names, column_type_names=types)
            total += len(rows)
            rows = []
        consumer.commit(asynchronous=False)

    while True:
        msg = consumer.poll(1.0)
        if assigned is None and consumer.assignment():
            assigned = {(p.topic, p.partition) for p in consumer.assignment()}
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add((msg.topic(), msg.partition()))
                if assigned is not None and at_end >= assigned:
                    break
                continue
            raise SystemExit(f"Kafka: {msg.error()}")
        at_end.discard((msg.topic(), msg.partition()))
        messages += 1
        tx = json.loads(msg.value())
        ids = {k: tx.get(k) for k in IDENTIFIERS}
        for record in tx.get("transactionSeries") or []:
            values = [None] * len(names)
            for key, value in record.items():
                if key not in column_of:
                    column_of[key] = index.get(snake(key))
                i = column_of[key]
                if i is not None:
                    values[i] = value
            for key, value in ids.items():
                i = index.get(snake(key))
                if i is not None and values[i] in (None, "") and value is not None:
                    values[i] = value
            row = [c(v) for c, v in zip(convert, values)]
            rows.append(row)
            if len(rows) >= BATCH:
                flush()
    flush()
    consumer.close()
    print(json.dumps({"rows": total, "messages": messages}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
