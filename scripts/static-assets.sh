#!/usr/bin/env bash
# Installs the third-party browser assets that package.json lists (OpenLayers for the admin map widgets;
# Leaflet, Leaflet.VectorGrid, jQuery and Bootstrap's CSS for the residents' folium map) from
# the npm registry, with the exact versions and hashes of package-lock.json, and copies the files we serve into
# var/static-vendor/ (git-ignored), which settings.STATICFILES_DIRS serves under /static/vendor/.
# Nothing third-party is committed, and no page loads code from a CDN. Does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=var/static-vendor
STAMP=$OUT/.installed-$(cat package.json package-lock.json | md5sum | cut -c1-12)
[ -f "$STAMP" ] && exit 0
command -v npm >/dev/null || EXTRA_DEBS="nodejs npm" scripts/system-deps.sh
echo "Installing static assets from the npm registry (npm ci)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
rm -rf "$OUT"
mkdir -p "$OUT/ol"
# ol/dist/ol.js is the single-file (UMD) build that defines the global `ol` that gis/js/OLMapWidget.js uses.
cp node_modules/ol/dist/ol.js node_modules/ol/dist/ol.js.map node_modules/ol/ol.css node_modules/ol/LICENSE.md "$OUT/ol/"
# The residents' map (web/folium_map.py points folium's default_js/default_css here): Leaflet with its marker
# images, the bundled VectorGrid (vector tiles), jQuery (folium's templates use it) and Bootstrap's CSS.
mkdir -p "$OUT/leaflet" "$OUT/vectorgrid" "$OUT/jquery" "$OUT/bootstrap"
cp -r node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/dist/images \
  node_modules/leaflet/LICENSE "$OUT/leaflet/"
cp node_modules/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js node_modules/leaflet.vectorgrid/README.md \
  "$OUT/vectorgrid/"
cp node_modules/jquery/dist/jquery.min.js node_modules/jquery/LICENSE.txt "$OUT/jquery/"
cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/LICENSE "$OUT/bootstrap/"
# axe-core (package.json's devDependencies) stays in node_modules/: the browser tests inject
# node_modules/axe-core/axe.min.js into the pages they check (tests/browser/axe.py); no page serves it.
test -f node_modules/axe-core/axe.min.js
touch "$STAMP"
