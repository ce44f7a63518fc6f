#!/usr/bin/env bash
# The tools the deployment test needs, from Debian: the Docker engine and client,
# docker-compose (file format with profiles and health-gated depends_on) and debootstrap
# (the test builds its base image; no image registry is needed).
set -euo pipefail
missing=()
for tool in dockerd docker-compose debootstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing ${missing[*]}: run as root, or apt-get install docker.io docker-compose debootstrap" >&2
  exit 1
fi
echo "installing docker.io, docker-compose and debootstrap"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker.io docker-compose debootstrap >/dev/null
