"""An independent read of a topic's watermarks and a group's committed offsets, with the
Python confluent-kafka client (its own librdkafka), for checking what wmtop shows.

Usage: kafka_offsets.py BROKERS TOPIC GROUP. Prints one JSON object:
{"PARTITION": {"low": L, "high": H, "committed": C or null}, ...}.
"""
import json
import sys

from confluent_kafka import Consumer, TopicPartition


def main() -> None:
    brokers, topic, group = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    committed = {
        tp.partition: (tp.offset if tp.offset >= 0 else None)
        for tp in c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    }
    out = {}
    for p in parts:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        out[str(p)] = {"low": low, "high": high, "committed": committed.get(p)}
    c.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
