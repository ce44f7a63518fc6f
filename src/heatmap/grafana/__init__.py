"""Grafana as code: dashboards and alert rules generated with the Grafana foundation SDK,
and the provisioning client (``heat grafana``). Generated JSON lives in the top-level
``dashboards/``."""
