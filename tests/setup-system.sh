#!/usr/bin/env bash
# What the test suite needs beyond Python packages, installed on a bare machine:
# Debian's chromium (screenshots of previews and reports) and the npm MJML validator.
# Idempotent and quick when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium not found and cannot install it here; browser tests will be skipped"
  fi
fi

if command -v npm >/dev/null 2>&1; then
  if [ ! -x "$here/js/node_modules/.bin/mjml" ]; then
    echo "setup: installing the MJML validator (npm mjml)"
    npm install --prefix "$here/js" --no-audit --no-fund --loglevel=error >/dev/null
  fi
else
  echo "setup: npm not found; the MJML validator test will be skipped"
fi
