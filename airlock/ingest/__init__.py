"""airlock.ingest."""
