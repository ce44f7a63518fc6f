"""Grafana as code: dashboards and alert rules generated with the Grafana foundation SDK,
Grafana's query macros (to run panel queries outside Grafana), and the provisioning
client (``heat grafana``). Generated JSON lives in the top-level ``dashboards/``."""
