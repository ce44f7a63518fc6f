"""The processor's web views: the live heat page and the JSON API for bots."""
