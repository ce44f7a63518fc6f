"""``heat replay``: the heat engine over recorded files, no Kafka needed."""
