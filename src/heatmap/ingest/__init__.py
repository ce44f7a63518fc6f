"""Ingest: sources of prices, positions and account equity, produced to Kafka."""
