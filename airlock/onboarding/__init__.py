"""airlock.onboarding."""
