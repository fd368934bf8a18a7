"""airlock.local."""
