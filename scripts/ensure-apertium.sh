#!/usr/bin/env bash
# Make sure the offline translation provider is installed: Apertium, its HTTP server
# apertium-apy and the English<->Spanish pair (Debian packages). The translation tests start
# their own apertium-apy from these. Installs only what is missing, and says so; quiet when
# everything is there. Needs root (or sudo) only when something must be installed.
set -euo pipefail
exec bash "$(dirname "$0")/ensure-debian.sh" apertium "the offline translation provider" \
  apertium apertium-apy apertium-eng-spa
