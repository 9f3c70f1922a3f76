#!/usr/bin/env bash
# Make sure the offline translation provider is installed: Apertium, its HTTP server
# apertium-apy and the English<->Spanish pair (Debian packages). The translation tests start
# their own apertium-apy from these. Installs only what is missing, and says so; quiet when
# everything is there. Needs root (or sudo) only when something must be installed.
set -euo pipefail

PACKAGES=(apertium apertium-apy apertium-eng-spa)

say() { printf 'apertium: %s\n' "$*" >&2; }

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

say "installing ${missing[*]} (Debian packages)"
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
