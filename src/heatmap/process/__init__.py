"""The stream processor (``heat process``): the only place the heat engine meets Kafka.

Every worker is a Faust worker in the group of the app id; the holder of Faust's
leader partition runs the engine (:mod:`heatmap.process.app`), the others stand
by. The active engine (:mod:`heatmap.process.active`) reads every input
partition, merges the records in event-time order (:mod:`heatmap.process.sequencer`),
applies them to the pure engine (:mod:`heatmap.process.host`) and commits, per
epoch, one Kafka transaction holding the applied order on the one-partition
``sequence`` topic (:mod:`heatmap.process.epochs`), the frames, alerts,
correlations and dead letters (:mod:`heatmap.process.outputs`) and, now and
then, a checkpoint. A new owner fences the old one, reads the committed state
back (:mod:`heatmap.process.recovery`) and continues exactly where it ended.
Configuration: :class:`heatmap.process.settings.ProcessSettings`; metrics:
:mod:`heatmap.process.metrics`.

The sequencer, the epoch format and the engine host are pure (no Kafka, asyncio
or clock), so they are unit-tested without a broker.
"""
