#!/bin/sh
# Alertmanager with the desk's webhook from HEAT_ALERT_WEBHOOK_URL, or no outgoing
# notification when it is "none" (alerts are then only listed by Alertmanager's API and
# UI). Runs in the official image (busybox sh and sed) as in any other.
set -eu
url=${HEAT_ALERT_WEBHOOK_URL:?set HEAT_ALERT_WEBHOOK_URL to the desk webhook, or to none}
config=/tmp/alertmanager.yml
if [ "$url" = none ]; then
  sed '/^ *webhook_configs:/,$d' /etc/alertmanager/alertmanager.yml >"$config"
else
  case "$url" in
    http://* | https://*) ;;
    *) echo "HEAT_ALERT_WEBHOOK_URL must be an http(s) URL or none, not: $url" >&2; exit 2 ;;
  esac
  escaped=$(printf '%s' "$url" | sed 's/[\\&|]/\\&/g')
  sed "s|@HEAT_ALERT_WEBHOOK_URL@|$escaped|" /etc/alertmanager/alertmanager.yml >"$config"
fi
exec /bin/alertmanager --config.file="$config" --storage.path=/alertmanager "$@"
