"""airlock.identity."""
