"""The stream engine: the generic machinery the contact-centre jobs run on.

Chosen by measurement over Faust and Quix Streams (docs/kpi-engine.md, "The engine"):
a batched confluent-kafka loop with per-partition state checkpointed, with its
positions, to a compacted changelog topic. This package holds what is not about
contact centres: checkpoints and restore, reading a topic to its end, the dead-letter
policy, and an in-memory broker that passes the same contract suite as Apache Kafka.
"""
