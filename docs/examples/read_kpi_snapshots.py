"""A downstream consumer of cc.kpi.snapshots with confluent-kafka's own Avro deserializer
and a Schema Registry: no ccpulse code. docs/operations.md "Consuming our topics".

    pip install 'confluent-kafka[avro,schemaregistry]'
    python read_kpi_snapshots.py BOOTSTRAP REGISTRY_URL
"""

import sys

from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer

bootstrap, registry_url = sys.argv[1], sys.argv[2]
registry = SchemaRegistryClient({"url": registry_url, "timeout": 10})
consumer = DeserializingConsumer(
    {
        "bootstrap.servers": bootstrap,
        "group.id": "downstream-wfm",
        "auto.offset.reset": "earliest",
        "key.deserializer": StringDeserializer("utf_8"),
        "value.deserializer": AvroDeserializer(registry),  # schema by the id in each frame
    }
)
consumer.subscribe(["cc.kpi.snapshots"])
latest = {}  # compacted topic: the highest version per key is the current value
idle = 0
while idle < 10:
    message = consumer.poll(1.0)
    if message is None:
        idle += 1
        continue
    idle = 0
    if message.error() is None:
        snapshot = message.value()
        if snapshot["version"] >= latest.get(message.key(), {"version": -1})["version"]:
            latest[message.key()] = snapshot
consumer.close()
registry.close()
print(f"{len(latest)} keys")
for key in sorted(k for k in latest if k.endswith("|TODAY")):
    s = latest[key]
    sl = "-" if s["service_level"] is None else f"{s['service_level']:.3f}"
    print(f"{key:22} offered={s['offered']:4} answered={s['answered']:4} abandoned={s['abandoned']:3} "
          f"service_level={sl} version={s['version']}")
