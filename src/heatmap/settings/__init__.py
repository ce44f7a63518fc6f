"""Settings shared by every service, one class per concern, read from ``HEAT_*`` variables.

``kafka``: where Kafka is, topic names and sizes, producer options. ``database``:
where PostgreSQL is and how its roles log in. A service's own settings class holds
only its own fields and embeds these.
"""
