"""The stream processor (``heat process``): the only place the heat engine meets Kafka.

It will hold the Faust app and its engine host: the one active worker (the
holder of Faust's leader partition) reads every input partition, merges the
records in event-time order (:mod:`heatmap.process.sequencer`), applies them
to the pure engine and makes the applied order durable as epochs on the
one-partition ``sequence`` topic (:mod:`heatmap.process.epochs`), with the
frames, alerts, correlations and checkpoints of an epoch in the same Kafka
transaction; standbys take over from the last checkpoint and the epochs after
it. Its configuration is :class:`heatmap.process.settings.ProcessSettings`.

The sequencer, the epoch format and the engine host that applies the
released order (:mod:`heatmap.process.host`) are pure (no Kafka, asyncio or
clock), so they are unit-tested without a broker.
"""
