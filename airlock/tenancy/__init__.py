"""airlock.tenancy."""
