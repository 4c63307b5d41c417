"""The wire contract: topic names and contracts, Avro records, the codec, the schema
registry, Kafka client configuration and topic administration."""
