"""Kafka: clients, the producer and the wire format."""
