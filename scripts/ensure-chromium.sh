#!/usr/bin/env bash
# Make sure the browser the browser tests drive is installed: Debian's `chromium` package
# (/usr/bin/chromium), which Playwright (playwright-core, from tests/js/package.json) launches
# by its path; Playwright's own browser downloads are never used. Installs the package only
# when it is missing, and says so; quiet when it is there. Needs root (or sudo) only then.
set -euo pipefail
bash "$(dirname "$0")/ensure-debian.sh" chromium "the browser the browser tests drive" chromium
if [[ ! -x /usr/bin/chromium ]]; then
  echo "chromium: the package is installed but /usr/bin/chromium is missing" >&2
  exit 1
fi
