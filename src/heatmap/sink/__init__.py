"""``heat sink``: processor outputs and inputs from Kafka into PostgreSQL/TimescaleDB.

Records are read ``read_committed`` in a consumer group, turned into one
:class:`heatmap.db.writer.HeatBatch` per poll (:mod:`.batching`, prices thinned by
:mod:`.price_sampling`), written in one transaction, and only then are their offsets
committed: at-least-once delivery into an idempotent writer stores each row once.
"""
