#!/usr/bin/env bash
# Installs the Debian packages the project needs, only when one is missing.
# PostgreSQL 15 + PostGIS 3 for the embedded cluster, GDAL/GEOS/PROJ for GeoDjango, gdal-bin for ogr2ogr,
# redis-server for the embedded Redis (the shared cache: rate limits, login lockouts);
# nginx: the buffering front that `make demo` runs (scripts/serve.py) with a config of its own, as its own user.
set -euo pipefail
PKGS=(postgresql-15 postgresql-15-postgis-3 gdal-bin libgdal32 libgeos-c1v5 libproj25 chromium redis-server nginx)
PKGS+=(pgbouncer)  # the tests run the Open311, staff, import and re-route tests through it (tests/pooler)
PKGS+=(${EXTRA_DEBS:-})
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: missing packages ${missing[*]}; run as root or install them" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's nginx package starts a server of its own on port 80 (as root) where an init system runs: the project
# does not use it (scripts/serve.py runs nginx with its own config, unprivileged), so it is stopped again.
if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
