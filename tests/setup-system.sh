#!/usr/bin/env bash
# What the test suite needs beyond Python packages, installed on a bare machine:
# Debian's chromium and chromium-driver (screenshots of previews and reports; selenium drives
# the team pages), the npm MJML validator and axe-core (accessibility checks).
# Idempotent and quick when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium and chromium-driver"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
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
