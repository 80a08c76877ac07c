"""Core: the one error tree, settings, the database, its driver reads, tables and migrations."""
