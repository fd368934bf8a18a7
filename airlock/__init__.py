"""Airlock core: secure multi-tenant file intake. Importable without AWS events or Lambda."""

__version__ = "0.1.0"
