"""Data Exchange: what every side (connectors, gateway, command line) shares.

One sub-package per subsystem, in layers (``../shared/DESIGN.md``, "Inside
``exchange/``"); an import never points up a layer, and the contracts in
``.importlinter`` check it in the test command::

    cli, local                            the command line and the local stack
    registry, audit                       the shared registry (builder, records,
                                          linkage, entities) and the audit log
    access, identity, security, kafka     grants and masking; who calls; keys,
                                          crypto and provenance; Kafka clients
    core                                  errors, settings, database, tables
"""
