"""Lambda entry points: parse the event, call the core, shape the response."""
