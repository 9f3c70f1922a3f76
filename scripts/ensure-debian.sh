#!/usr/bin/env bash
# Install Debian packages that are missing, and say so; quiet when all are there. Needs root
# (or sudo) only when something must be installed. Used by `make install`:
#   scripts/ensure-apertium.sh   the offline translation provider (apertium, apertium-apy, ...)
#   scripts/ensure-chromium.sh   the browser the browser tests drive (chromium)
#
# usage: ensure-debian.sh <tag> <what they are for> <package>...
set -euo pipefail

TAG=$1
WHY=$2
shift 2
PACKAGES=("$@")

say() { printf '%s: %s\n' "$TAG" "$*" >&2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null; then
  say "missing ${missing[*]} and no apt-get here: install them with your package manager"
  exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo)
else
  say "missing ${missing[*]}: run as root: apt-get install -y --no-install-recommends ${missing[*]}"
  exit 1
fi

say "installing ${missing[*]} (Debian packages: $WHY)"
# A fresh machine may have no package lists yet: fetch them when apt knows no candidate.
for p in "${missing[@]}"; do
  if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    say "no package list knows $p yet: running apt-get update"
    "${SUDO[@]}" apt-get update -qq
    break
  fi
done
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
for p in "${missing[@]}"; do
  installed "$p" || { say "$p did not install"; exit 1; }
done
say "installed ${missing[*]}"
