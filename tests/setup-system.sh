#!/usr/bin/env bash
# What the test suite needs beyond Python packages, installed on a bare machine:
# Debian's chromium and chromium-driver (screenshots of previews and reports; selenium drives
# the team pages), the npm MJML validator and axe-core (accessibility checks).
# Idempotent and quick when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# apt-get that waits while another install (unattended-upgrades, a second CI job) holds
# the dpkg or apt lists lock, up to 10 minutes, instead of failing at once: apt's own
# DPkg::Lock::Timeout for the dpkg lock, and a retry for whatever lock it does not cover.
apt_waiting() {
  local out deadline=$((SECONDS + 600))
  while true; do
    if out=$(apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1); then
      return 0
    fi
    if ! grep -qiE "could not (get|open) lock|unable to (acquire|lock)" <<<"$out" \
      || [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s\n' "$out" >&2
      return 1
    fi
    echo "setup: another install holds the package manager's lock; waiting"
    sleep 5
  done
}

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium and chromium-driver"
    apt_waiting update -qq
    DEBIAN_FRONTEND=noninteractive apt_waiting install -y -qq chromium chromium-driver
  else
    echo "setup: chromium/chromium-driver not found and cannot install them here; browser tests will be skipped"
  fi
fi

if command -v npm >/dev/null 2>&1; then
  if [ ! -x "$here/js/node_modules/.bin/mjml" ] || [ ! -f "$here/js/node_modules/axe-core/axe.min.js" ]; then
    echo "setup: installing the MJML validator and axe-core (npm)"
    npm install --prefix "$here/js" --no-audit --no-fund --loglevel=error >/dev/null
  fi
else
  echo "setup: npm not found; the MJML validator and accessibility tests will be skipped"
fi
