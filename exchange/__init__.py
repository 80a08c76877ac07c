"""Data Exchange: shared configuration, Kafka, wire format, registry builder, audit, CLI."""
