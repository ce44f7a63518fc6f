"""A real local stack as plain processes: Apache Kafka (KRaft) and PostgreSQL."""
