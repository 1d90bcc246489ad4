"""Kafka as the tests set it up and check it, with the Python confluent-kafka client (its
own librdkafka), independently of wmtop.

Usage: kafka_admin.py BROKERS COMMAND ARGS...
  create-topic TOPIC PARTITIONS REPLICATION [KEY=VALUE...]   prints {"created": TOPIC} once
                                the brokers' metadata shows it with a leader per partition
  describe-group GROUP TOPIC    prints {"state": S, "members": [{"client_id", "host",
                                "partitions": [...]}, ...]} (partitions of TOPIC only)
  leaders TOPIC                 prints {"PARTITION": LEADER, ...}

Client properties beyond bootstrap.servers (SASL, TLS) come as a JSON object in the
environment variable WMTOP_TEST_KAFKA_CONFIG, so no password is on a command line.
"""
import json
import os
import sys
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def admin(brokers: str) -> AdminClient:
    conf = {"bootstrap.servers": brokers}
    conf.update(json.loads(os.environ.get("WMTOP_TEST_KAFKA_CONFIG", "{}")))
    return AdminClient(conf)


def create_topic(a: AdminClient, topic: str, partitions: str, replication: str, *configs: str) -> dict:
    config = dict(c.split("=", 1) for c in configs)
    new = NewTopic(topic, num_partitions=int(partitions), replication_factor=int(replication), config=config)
    for future in a.create_topics([new], operation_timeout=30).values():
        future.result()
    # Created on the controller; wait until the brokers' metadata has it with a leader for
    # every partition, as a topic made earlier would have.
    deadline = time.time() + 30
    while time.time() < deadline:
        found = a.list_topics(topic, timeout=10).topics.get(topic)
        parts = found.partitions if found is not None and found.error is None else {}
        if len(parts) == int(partitions) and all(p.leader >= 0 for p in parts.values()):
            return {"created": topic}
        time.sleep(0.1)
    raise SystemExit(f"topic {topic} was created but its metadata did not show it within 30 s")


def describe_group(a: AdminClient, group: str, topic: str) -> dict:
    for attempt in range(20):
        try:
            described = a.describe_consumer_groups([group])[group].result()
            break
        except KafkaException as e:
            if not e.args[0].retriable() or attempt == 19:
                raise
            time.sleep(0.25)
    members = []
    for m in described.members:
        parts = [tp.partition for tp in (m.assignment.topic_partitions if m.assignment else []) if tp.topic == topic]
        members.append({"client_id": m.client_id, "host": m.host.lstrip("/"), "partitions": sorted(parts)})
    return {"state": str(described.state.name), "members": members}


def leaders(a: AdminClient, topic: str) -> dict:
    md = a.list_topics(topic, timeout=10)
    return {str(p.id): p.leader for p in md.topics[topic].partitions.values()}


def main() -> None:
    brokers, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    a = admin(brokers)
    run = {"create-topic": create_topic, "describe-group": describe_group, "leaders": leaders}[command]
    json.dump(run(a, *args), sys.stdout)


if __name__ == "__main__":
    main()
