"""Sharing indicators and metrics: how well data is shared (DESIGN.md, "Sharing indicators")."""
