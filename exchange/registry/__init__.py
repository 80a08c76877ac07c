"""The shared registry: the builder, the record store, linkage, entities, rebuilds and checksums."""
