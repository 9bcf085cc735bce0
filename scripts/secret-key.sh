#!/usr/bin/env bash
# This checkout's own Django SECRET_KEY in var/secret_key (mode 0600), made once, never committed, never shared.
# The settings read it when neither SECRET_KEY nor SECRET_KEY_FILE is set, so `make test` and `make demo` run
# with DEBUG off on a fresh clone without a key that anyone else knows. A deployment sets its own (README).
#   scripts/secret-key.sh          make var/secret_key if it is missing (idempotent)
#   scripts/secret-key.sh --print  the same, then print the key (e.g. to hand to a service: SECRET_KEY=...)
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=var/secret_key
mkdir -p var
if [ ! -s "$FILE" ]; then
  umask 077
  tmp=$(mktemp var/.secret_key.XXXXXX)
  # 50 random bytes, URL-safe base64 (67 characters): what Django's check --deploy asks of a key and more.
  python3 -c 'import secrets; print(secrets.token_urlsafe(50))' > "$tmp"
  mv "$tmp" "$FILE"
  echo "Made this checkout's secret key in $FILE (mode 0600)"
fi
chmod 0600 "$FILE"
if [ "${1:-}" = "--print" ]; then cat "$FILE"; fi
