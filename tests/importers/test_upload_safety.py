"""An import reaches no further than its file: no other file of the server, no URL, no bomb, no server path in
what it says, and no commit that a dry run passed and the database then refuses.

Each class is tested through `run_import` (what both entry points share), and through `manage.py import_dataset`
where the command line adds something (paths as typed, the exit code); tests/admin/test_upload.py drives the
admin upload page with the same hostile files.
"""
import http.server
import io
import json
import os
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
import yaml
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command

from facilities.models import FACILITY_TYPE_NAME_MAX, Facility
from importers.core import run_import
from importers.errors import ImportFailure
from importers.models import ImportRun
from tests.conftest import point, write_geojson

pytestmark = pytest.mark.django_db

MARKER = "TOP-SECRET-7f3a"  # the content of the server's file that no import may show
ARBAT = (37.5930, 55.7494)
SPEC = {"dataset": "t-safe-lights", "target": "facilities", "key": "id", "type": "streetlight",
        "types": {"streetlight": {"ru": "Фонарь", "en": "Street light"}}, "owner": "mos", "name": "name"}


# ---- a web server that counts what reaches it, and a secret file ---------------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.hits.append(self.path)
        body = json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "r1", "name": MARKER}, "geometry": point(*ARBAT)}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802 - /vsicurl/ asks for the size first
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)  # a free port from the OS
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def hits(web):
    _Recorder.hits.clear()
    return _Recorder.hits


@pytest.fixture
def secret(tmp_path):
    """A CSV file of the server that reads as facilities, with MARKER as a name."""
    path = tmp_path / "server-secret.csv"
    path.write_text(f"id,name,lon,lat\ns1,{MARKER},{ARBAT[0]},{ARBAT[1]}\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path):
    settings.IMPORTS_DIR = str(tmp_path / "imports")
    return tmp_path / "imports"


def lights_geojson(rows=(("1", "Lamp"),)):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": k, "name": n}, "geometry": point(*ARBAT)} for k, n in rows]}
    return json.dumps(doc)


def everything_shown(result_or_error):
    """All an import shows its user: the error or the report, the run's error, and the rejects table."""
    run = ImportRun.objects.latest("pk")
    shown = [str(result_or_error), run.error, json.dumps(run.counts)]
    if run.report_path and Path(run.report_path).is_file():
        shown.append(Path(run.report_path).read_text(encoding="utf-8"))
    if run.rejects_path and Path(run.rejects_path).is_file():
        shown.append(Path(run.rejects_path).read_text(encoding="utf-8"))
    shown += list(Facility.objects.filter(dataset__code=SPEC["dataset"]).values_list("name", flat=True))
    return "\n".join(shown)


def attempt(path, spec=SPEC, **kwargs):
    try:
        return run_import(path, spec, **kwargs)
    except ImportFailure as exc:
        assert "\n" not in str(exc), str(exc)
        return exc


# ---- 1. a file named like one format that holds another driver's description ---------------------------------

def vrt_local(secret, web):
    return (f'<OGRVRTDataSource><OGRVRTLayer name="server-secret"><SrcDataSource>{secret}</SrcDataSource>'
            '<GeometryType>wkbPoint</GeometryType><GeometryField encoding="PointFromColumns" x="lon" y="lat"/>'
            '</OGRVRTLayer></OGRVRTDataSource>')


def vrt_url(secret, web):
    return (f'<OGRVRTDataSource><OGRVRTLayer name="remote"><SrcDataSource>/vsicurl/{web}/remote.geojson'
            '</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>')


def vrt_http(secret, web):
    return (f'<OGRVRTDataSource><OGRVRTLayer name="remote"><SrcDataSource>GeoJSON:{web}/direct.geojson'
            '</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>')


def gml_remote_schema(secret, web):
    return (f'<?xml version="1.0"?><ogr:FeatureCollection xmlns:ogr="http://ogr.maptools.org/" '
            f'xmlns:gml="http://www.opengis.net/gml" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="http://ogr.maptools.org/ {web}/schema.xsd"><gml:featureMember><ogr:x>'
            f'<ogr:id>1</ogr:id><ogr:name>{MARKER}</ogr:name></ogr:x></gml:featureMember></ogr:FeatureCollection>')


def csv_text(secret, web):
    return secret.read_text(encoding="utf-8")


DISGUISES = {"OGR VRT of a server file": vrt_local, "OGR VRT of a /vsicurl/ URL": vrt_url,
             "OGR VRT of a GeoJSON: URL": vrt_http, "GML with a remote schema": gml_remote_schema,
             "CSV": csv_text}


def pack(tmp_path, kind, member_name, content):
    """The content as a plain file, or as the one member of a zip or kmz."""
    data = content.encode() if isinstance(content, str) else content
    if kind == "plain":
        path = tmp_path / member_name
        path.write_bytes(data)
        return path
    path = tmp_path / f"upload.{kind}"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member_name, data)
    return path


@pytest.mark.parametrize("disguise", DISGUISES)
@pytest.mark.parametrize("kind, member", [("plain", "lights.geojson"), ("plain", "lights.json"),
                                          ("plain", "lights.kml"), ("plain", "lights.gpkg"),
                                          ("plain", "lights.shp"), ("zip", "lights.geojson"),
                                          ("zip", "lights.shp"), ("kmz", "doc.kml")])
def test_a_file_is_read_only_by_the_driver_its_name_allows(tmp_path, secret, web, hits, disguise, kind, member):
    path = pack(tmp_path, kind, member, DISGUISES[disguise](secret, web))
    outcome = attempt(path, {**SPEC, "source": {"crs": "EPSG:4326"}})
    assert isinstance(outcome, ImportFailure), outcome.counts
    assert MARKER not in everything_shown(outcome)
    assert hits == []
    assert not Facility.objects.filter(dataset__code=SPEC["dataset"]).exists()


def geojson_crs(kind):
    def build(secret, web):
        props = {"link": {"href": f"{web}/crs-link", "type": "ogcwkt"}, "url": {"url": f"{web}/crs-url"},
                 "name": {"name": f"{web}/crs-name"}, "file": {"name": str(secret)}}[kind]
        doc = json.loads(lights_geojson())
        doc["crs"] = {"type": "name" if kind == "file" else kind, "properties": props}
        return "lights.geojson", json.dumps(doc)
    return build


def kml_network_link(secret, web):
    other = secret.with_suffix(".kml")
    other.write_text(f'<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>{MARKER}</name>'
                     '<Point><coordinates>37.59,55.75</coordinates></Point></Placemark></Document></kml>')
    return "lights.kml", (
        f'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f'<NetworkLink><Link><href>{web}/network-link.kml</href></Link></NetworkLink>'
        f'<NetworkLink><Link><href>{other}</href></Link></NetworkLink>'
        f'<Style id="s"><IconStyle><Icon><href>{web}/icon.png</href></Icon></IconStyle></Style>'
        f'<Placemark><name>Lamp</name><styleUrl>{web}/style.kml#s</styleUrl><ExtendedData>'
        '<Data name="id"><value>1</value></Data></ExtendedData><Point><coordinates>37.593,55.7494</coordinates>'
        '</Point></Placemark></Document></kml>')


def kml_external_entity(secret, web):
    return "lights.kml", (
        f'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY s SYSTEM "file://{secret}"><!ENTITY w SYSTEM "{web}/dtd">]>'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>&s;&w;</name><ExtendedData>'
        '<Data name="id"><value>1</value></Data></ExtendedData><Point><coordinates>37.593,55.7494</coordinates>'
        '</Point></Placemark></Document></kml>')


def gpkg_virtual_ogr(secret, web):
    import sqlite3

    path = secret.parent / "made.gpkg"
    gpd.GeoDataFrame({"id": ["1"], "name": ["Lamp"]}, geometry=[shapely.Point(*ARBAT)],
                     crs="EPSG:4326").to_file(path, engine="pyogrio", layer="lights")
    db = sqlite3.connect(path)
    db.execute("PRAGMA writable_schema=ON")
    db.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('table', 'lights2', "
               "'lights2', 0, ?)", [f"CREATE VIRTUAL TABLE lights2 USING VirtualOGR('{secret}')"])
    db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
               "VALUES ('lights2', 'attributes', 'lights2', 0)")
    db.commit()
    db.close()
    return "lights.gpkg", path.read_bytes()


INDIRECTIONS = {"GeoJSON crs link": (geojson_crs("link"), None), "GeoJSON crs url": (geojson_crs("url"), None),
                "GeoJSON crs name URL": (geojson_crs("name"), None),
                "GeoJSON crs name file": (geojson_crs("file"), None),
                "KML NetworkLink and styles": (kml_network_link, None),
                "KML external entity": (kml_external_entity, None),
                "GPKG VirtualOGR table": (gpkg_virtual_ogr, "lights2")}


@pytest.mark.parametrize("case", INDIRECTIONS)
def test_what_a_readable_file_points_at_is_not_followed(tmp_path, secret, web, hits, case):
    build, layer = INDIRECTIONS[case]
    name, content = build(secret, web)
    path = pack(tmp_path, "plain", name, content)
    spec = {**SPEC, "source": {"crs": "EPSG:4326", **({"layer": layer} if layer else {})}}
    if name.endswith(".kml"):
        spec = {**spec, "name": "Name"}
    outcome = attempt(path, spec)
    assert MARKER not in everything_shown(outcome)
    assert hits == []


@pytest.mark.parametrize("target", ["GeoJSON:{web}/direct.geojson", "/vsicurl/{web}/vsicurl.geojson",
                                    "/vsicurl_streaming/{web}/streaming.geojson", "/vsizip/vsicurl/{web}/z.zip"])
def test_gdal_itself_has_no_network_after_the_lock_down(web, hits, target):
    """Below the importer's own checks: GDAL (pyogrio's) fetches nothing even when handed a URL directly."""
    from importers import sources

    sources.lock_down()
    # Registering GDAL's drivers again brings back none that GDAL_SKIP names (GDAL_SKIP can not name a driver
    # with a space in its name: those come back until the next lock_down(), which every import's open runs).
    pyogrio._ogr._register_drivers()
    assert all(" " in d for d in set(pyogrio.list_drivers()) - set(sources.SAFE_DRIVERS))
    sources.lock_down()
    assert set(pyogrio.list_drivers()) == set(sources.SAFE_DRIVERS)
    with pytest.raises(pyogrio.errors.DataSourceError):
        pyogrio.read_info(target.format(web=web))
    assert hits == []


# ---- 2. names that GDAL or pyogrio would parse -----------------------------------------------------------------

@pytest.mark.parametrize("name, decoy, decoy_format", [
    ("CSV:lights.geojson", "lights.geojson", "csv"),        # GDAL: the CSV driver, on another file
    ("GeoJSON:lights.json", "lights.json", "geojson"),      # GDAL: a driver prefix, on another file
    ("a!secret.geojson", "secret.geojson", "geojson"),      # pyogrio: archive!member, i.e. another file
    ("a;b.geojson", "a", "geojson"),                        # pyogrio (urlparse): ';' starts parameters: file "a"
])
@pytest.mark.parametrize("entry", ["run_import", "manage.py import_dataset"])
def test_a_file_name_is_never_parsed_as_a_connection_string_url_or_member(tmp_path, monkeypatch, secret, hits,
                                                                          name, decoy, decoy_format, entry):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(lights_geojson(), encoding="utf-8")
    # what GDAL would open if it parsed the name: another file of the server
    (tmp_path / decoy).write_text(secret.read_text(encoding="utf-8") if decoy_format == "csv"
                                  else lights_geojson([("s1", MARKER)]), encoding="utf-8")
    if entry == "run_import":
        outcome = attempt(name)
    else:
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(json.dumps(SPEC), encoding="utf-8")
        with pytest.raises(CommandError) as info:
            call_command("import_dataset", name, "--spec", str(spec_path), stdout=io.StringIO())
        outcome = info.value
    assert isinstance(outcome, Exception)
    assert "rename" in str(outcome)
    assert MARKER not in everything_shown(outcome)


@pytest.mark.parametrize("name", ["/vsicurl/{web}/x.geojson", "/vsizip/{tmp}/a.zip/a.geojson", "/vsimem/x.geojson"])
def test_gdal_virtual_paths_are_refused(tmp_path, web, hits, name):
    outcome = attempt(name.format(web=web, tmp=tmp_path))
    assert isinstance(outcome, ImportFailure) and "virtual file system" in str(outcome)
    assert hits == []


# ---- 3. archives: inflated size and ratio capped, nothing nested, nothing outside ------------------------------

def shapefile_members(tmp_path):
    folder = tmp_path / "shp"
    folder.mkdir(exist_ok=True)
    gpd.GeoDataFrame({"id": ["1"], "name": ["Lamp"]}, geometry=[shapely.Point(*ARBAT)],
                     crs="EPSG:4326").to_file(folder / "lights.shp", engine="pyogrio")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def datamos_members(tmp_path):
    records = [{"id": "1", "name": "Lamp", "geoData": point(*ARBAT)}]
    return {"data-20260101.json": json.dumps(records).encode()}


def kml_members(tmp_path):
    return {"doc.kml": ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>Lamp</name>'
                        '<ExtendedData><Data name="id"><value>1</value></Data></ExtendedData><Point>'
                        '<coordinates>37.593,55.7494</coordinates></Point></Placemark></Document></kml>').encode()}


ARCHIVE_KINDS = {
    "zipped GeoJSON": ("zip", lambda tmp: {"lights.geojson": lights_geojson().encode()}, {}),
    "zipped Shapefile": ("zip", shapefile_members, {}),
    "zipped data.mos.ru JSON": ("zip", datamos_members, {}),
    "KMZ": ("kmz", kml_members, {"name": "Name"}),
}


def inner_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner.geojson", lights_geojson())
    return buf.getvalue()


def write_archive(path, members, extra=None, symlink=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


ATTACKS = {
    "a member that inflates 1000 times": ({"notes.txt": b" " * (3 * 1024 * 1024)}, None, "times"),
    "more than the inflated cap": ({"notes.txt": os.urandom(3 * 512 * 1024).hex().encode()}, None, "MB allowed"),
    "a nested zip": ({"inner.zip": inner_zip()}, None, "nested"),
    "a nested gzip": ({"data.json.gz": b"\x1f\x8b\x08\x00" + b"\x00" * 20}, None, "nested"),
    "a zip named .json inside": ({"more.json": inner_zip()}, None, "nested"),
    "a member named ../x": ({"../escape.txt": b"x"}, None, "'..'"),
    "a member with an absolute name": ({"/tmp/escape.txt": b"x"}, None, "absolute"),
    "a symbolic link member": ({}, "link.geojson", "symbolic link"),
}


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("archive", ARCHIVE_KINDS)
def test_every_archive_member_is_capped_and_checked_before_it_is_read(tmp_path, settings, imports_dir, archive,
                                                                      attack):
    suffix, members, extra_spec = ARCHIVE_KINDS[archive]
    extra, symlink, reason = ATTACKS[attack]
    settings.IMPORT_UNPACKED_MAX_BYTES = (2 if reason == "MB allowed" else 8) * 1024 * 1024
    base = members(tmp_path)
    spec = {**SPEC, "source": {"crs": "EPSG:4326"}, **extra_spec}
    good = write_archive(tmp_path / f"good.{suffix}", base)
    assert run_import(good, spec).counts["created"] == 1  # the archive itself is fine
    path = write_archive(tmp_path / f"upload.{suffix}", base, extra, symlink)
    with pytest.raises(ImportFailure, match=reason) as info:
        run_import(path, spec, original_name=f"Мой архив.{suffix}")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"Мой архив.{suffix}: ")
    assert str(tmp_path) not in message
    assert ImportRun.objects.latest("pk").status == ImportRun.Status.FAILED
    assert list((imports_dir / "tmp").iterdir()) == []  # the unpacked members are gone


def test_what_a_killed_run_left_unpacked_is_removed_later(tmp_path, imports_dir):
    left = imports_dir / "tmp" / "unpacked-killed"
    left.mkdir(parents=True)
    (left / "big.geojson").write_text("{}")
    old = os.stat(left).st_mtime - 2 * 24 * 3600
    os.utime(left, (old, old))
    fresh = imports_dir / "tmp" / "unpacked-running"
    fresh.mkdir()
    path = write_archive(tmp_path / "lights.zip", {"lights.geojson": lights_geojson().encode()})
    assert run_import(path, {**SPEC, "source": {"crs": "EPSG:4326"}}).counts["created"] == 1
    assert not left.exists() and fresh.exists()


def test_an_archive_whose_headers_understate_a_member_is_refused(tmp_path, settings):
    """The caps count the bytes that come out of the decompressor, not what the headers say."""
    path = write_archive(tmp_path / "lying.zip", {"lights.geojson": lights_geojson().encode() + b" " * 500_000})
    data = bytearray(path.read_bytes())
    real = (len(lights_geojson()) + 500_000).to_bytes(4, "little")
    assert data.count(real) == 2  # the local header and the central directory
    data[:] = data.replace(real, (100).to_bytes(4, "little"))
    path.write_bytes(bytes(data))
    with pytest.raises(ImportFailure, match="can not be unpacked|not a readable zip"):
        run_import(path, {**SPEC, "source": {"crs": "EPSG:4326"}})


@pytest.mark.parametrize("name", ["lights.geojson.gz", "lights.tar", "lights.7z", "lights.kml"])
def test_other_archives_and_archives_under_another_name_are_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(inner_zip() if name.endswith(".kml") else b"\x1f\x8b\x08\x00" + b"\x00" * 64)
    with pytest.raises(ImportFailure, match="archive"):
        run_import(path, SPEC)


# ---- 4. no server path in anything an import says --------------------------------------------------------------

def server_paths(tmp_path):
    return [str(tmp_path), str(settings.BASE_DIR), settings.IMPORTS_DIR]


NAMED_PLACES = ("unreadable file", "spec that is not YAML", "archive member", "report")


@pytest.mark.parametrize("place", NAMED_PLACES + ("field the file lacks", "rejects table"))
def test_messages_name_the_upload_as_its_user_named_it(tmp_path, place):
    stored = tmp_path / "uploads" / ("f" * 64)
    stored.mkdir(parents=True)
    path = stored / "Мой_файл.geojson"
    path.write_text(lights_geojson([("1", "Lamp"), ("", "No key")]), encoding="utf-8")
    spec_path = stored / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    if place == "unreadable file":
        path.write_text("{this is not GeoJSON", encoding="utf-8")
    elif place == "spec that is not YAML":
        spec_path.write_text("dataset: [unclosed\n", encoding="utf-8")
    elif place == "field the file lacks":
        spec_path.write_text(yaml.safe_dump({**SPEC, "name": "title"}), encoding="utf-8")
    elif place == "archive member":
        path = stored / "Мой_файл.zip"
        write_archive(path, {"a.geojson": b"{not json", "b.txt": b"x"})
    outcome = attempt(path, spec_path, original_name="Мой файл" + path.suffix, spec_name="мой spec.yaml")
    shown = everything_shown(outcome)
    for where in server_paths(tmp_path):
        assert where not in shown
    if place in ("report", "rejects table"):
        assert "Мой файл.geojson" in outcome.report_text and "missing key" in shown
    elif place in NAMED_PLACES:
        assert "Мой файл" in str(outcome) or "мой spec.yaml" in str(outcome)


def test_the_command_names_the_file_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("broken.geojson").write_text("{not GeoJSON", encoding="utf-8")
    Path("spec.json").write_text(json.dumps(SPEC), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "import_dataset",
                           "broken.geojson", "--spec", "spec.json"], capture_output=True, text=True,
                          env={**os.environ, "OURCITY_DB_NAME": settings.DATABASES["default"]["NAME"],
                               "OURCITY_IMPORTS_DIR": settings.IMPORTS_DIR})
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("CommandError: broken.geojson: ")
    assert str(tmp_path) not in proc.stderr


# ---- 5. a dry run refuses what the commit could not store ------------------------------------------------------

def limit(label):
    app_model, field = label.rsplit(".", 1)
    return apps.get_model(app_model)._meta.get_field(field).max_length


def yaml_file(tmp_path, records):
    path = tmp_path / "rows.yaml"
    path.write_text(yaml.safe_dump(records, allow_unicode=True), encoding="utf-8")
    return path


CATEGORY = {"code": "t-safe-ok", "name_ru": "Яма", "name_en": "Pothole", "group_ru": "Дороги", "group_en": "Roads",
            "rule": "district", "keywords": "", "keywords_en": "", "attributes": ""}
CATEGORY_SPEC = {"dataset": "t-safe-cats", "target": "categories", "key": "code", **{k: k for k in CATEGORY}}
AUTHORITY = {"code": "t-safe-auth-ok", "name": "Управа", "short_name": "Управа", "department": "Отдел"}
AUTHORITY_SPEC = {"dataset": "t-safe-auths", "target": "authorities", "key": "code", **{k: k for k in AUTHORITY},
                  "department": {"field": "department"}}  # a plain string would be a constant here
ASSIGNMENT = {"key": "ok", "authority": "mos", "category": "", "department": "t-safe-dep", "department_name": "Отдел"}
ASSIGNMENT_SPEC = {"dataset": "t-safe-routing", "target": "assignments", "key": "key",
                   "authority": {"field": "authority"}, "category": {"field": "category"}, "department": "department", "department_name": "department_name"}
HOLIDAY = {"date": "2031-01-01", "name": "Новый год"}
HOLIDAY_SPEC = {"dataset": "t-safe-holidays", "target": "holidays", "key": "date", "date": "date", "name": "name"}
AREA_SPEC = {"dataset": "t-safe-areas", "target": "areas", "level": "okrug", "key": "id", "name": "name",
             "oktmo": "oktmo", "jurisdiction": {"code": "t-safe-juris-{jcode}", "name": "{jname}",
                                                "kind": "prefecture"}}
FACILITY_SPEC = {**SPEC, "address": "address"}


def longer(label, base="x"):
    return base * (limit(label) + 1)


def one_attribute(description):
    return json.dumps([{"code": "depth", "datatype": "number", "description": description}])


# (spec, the good row, the bad row's changes, the column named in the reason)
ROW_TARGETS = {
    "category group_ru": (CATEGORY_SPEC, CATEGORY, {"group_ru": "г" * 150}, "group_ru"),
    "category name_en": (CATEGORY_SPEC, CATEGORY, {"name_en": lambda: "n" * 201}, "name_en"),
    "category keywords": (CATEGORY_SPEC, CATEGORY, {"keywords": lambda: longer("routing.Category.keywords")},
                          "keywords"),
    "category keywords_en": (CATEGORY_SPEC, CATEGORY,
                             {"keywords_en": lambda: longer("routing.Category.keywords_en")}, "keywords_en"),
    "category question": (CATEGORY_SPEC, CATEGORY,
                          {"attributes": lambda: one_attribute("q" * 501)}, "description"),
    "category NUL": (CATEGORY_SPEC, CATEGORY, {"name_ru": "Яма\x00"}, "NUL"),
    "authority name": (AUTHORITY_SPEC, AUTHORITY, {"name": lambda: longer("facilities.Authority.name")}, "name"),
    "authority short_name": (AUTHORITY_SPEC, AUTHORITY,
                             {"short_name": lambda: longer("facilities.Authority.short_name")}, "short_name"),
    "authority code": (AUTHORITY_SPEC, AUTHORITY, {"code": lambda: longer("facilities.Authority.code")}, "code"),
    "authority department": (AUTHORITY_SPEC, AUTHORITY,
                             {"department": lambda: longer("facilities.Department.name")}, "department"),
    "routing department code": (ASSIGNMENT_SPEC, ASSIGNMENT,
                                {"authority": "donm", "department": lambda: longer("facilities.Department.code")},
                                "department_code"),
    "routing department name": (ASSIGNMENT_SPEC, ASSIGNMENT,
                                {"authority": "donm", "department_name": lambda: longer("facilities.Department.name")},
                                "department_name"),
    "holiday name": (HOLIDAY_SPEC, HOLIDAY, {"date": "2031-01-02", "name": lambda: longer("routing.Holiday.name")},
                     "name"),
}


def bad_row(good, changes):
    return {**good, **{k: (v() if callable(v) else v) for k, v in changes.items()},
            **({"code": good["code"] + "-bad"} if "code" in good and "code" not in changes else {}),
            **({"key": "bad"} if "key" in good else {})}


def assert_rejected_in_dry_run_and_commit(path, spec, column):
    dry = run_import(path, spec)
    assert dry.counts["rejected"] == 1 and column in dry.rejects[0][2], dry.rejects
    assert dry.rejects[0][0] == 2  # the second row
    committed = run_import(path, spec, commit=True)
    assert committed.run.status in (ImportRun.Status.COMMITTED, ImportRun.Status.NO_CHANGE)
    assert committed.rejects == dry.rejects
    assert {k: committed.counts[k] for k in ("created", "updated", "unchanged")} == \
        {k: dry.counts[k] for k in ("created", "updated", "unchanged")}


@pytest.mark.parametrize("case", ROW_TARGETS)
def test_a_row_the_commit_could_not_store_is_rejected_in_the_dry_run_too(tmp_path, case):
    spec, good, changes, column = ROW_TARGETS[case]
    path = yaml_file(tmp_path, [good, bad_row(good, changes)])
    assert_rejected_in_dry_run_and_commit(path, spec, column)


def square(x):
    return {"type": "Polygon", "coordinates": [[[x, 50.0], [x + 0.01, 50.0], [x + 0.01, 50.01], [x, 50.01],
                                                [x, 50.0]]]}


@pytest.mark.parametrize("column, value", [
    ("name", lambda: longer("facilities.AdminArea.name")),
    ("oktmo", lambda: "4" * (limit("facilities.AdminArea.oktmo") + 1)),
    ("j_name", lambda: longer("facilities.Authority.name")),
    ("j_code", lambda: "same"),  # two areas, one jurisdiction authority: the commit's upsert would meet it twice
])
def test_areas_and_their_authorities_are_checked_against_their_columns(tmp_path, column, value):
    good = {"id": "1", "name": "Округ", "oktmo": "45000000", "jcode": "same" if column == "j_code" else "a",
            "jname": "Префектура"}
    bad = {**good, "id": "2", "jcode": "b", {"j_name": "jname", "j_code": "jcode"}.get(column, column): value()}
    path = write_geojson(tmp_path / "areas.geojson", [(good, square(10.0)), (bad, square(10.1))])
    assert_rejected_in_dry_run_and_commit(path, {**AREA_SPEC, "source": {"crs": "EPSG:4326"}},
                                          "jurisdiction authority code" if column == "j_code" else column)


@pytest.mark.parametrize("column, value", [
    ("name", lambda: longer("facilities.Facility.name")),
    ("address", lambda: longer("facilities.Facility.address")),
    ("id", lambda: longer("facilities.Facility.source_key")),
])
def test_facilities_are_checked_against_their_columns(tmp_path, column, value):
    good = {"id": "1", "name": "Lamp", "address": "Арбат, 1"}
    bad = {**good, "id": "2", column: value()}
    path = write_geojson(tmp_path / "lights.geojson", [(good, point(*ARBAT)), (bad, point(*ARBAT))])
    assert_rejected_in_dry_run_and_commit(path, FACILITY_SPEC, "key" if column == "id" else column)


@pytest.mark.parametrize("key, value", [("dataset_name", lambda: longer("facilities.Dataset.name")),
                                        ("types", lambda: {"streetlight": {
                                            "ru": "x" * (FACILITY_TYPE_NAME_MAX + 1)}})])
def test_spec_values_that_the_registry_can_not_store_are_refused_before_reading(tmp_path, key, value):
    path = write_geojson(tmp_path / "lights.geojson", [({"id": "1", "name": "Lamp"}, point(*ARBAT))])
    with pytest.raises(ImportFailure, match="characters long"):
        run_import(path, {**SPEC, key: value()})


# ---- formats parsed whole in memory: a size cap before parsing, no YAML aliases, no nesting bombs -------------

def _bomb_yaml(levels=9, width=9):
    """A record list of a few hundred bytes whose aliases expand to width**levels cells once turned into text."""
    anchors = ["&a0 [lol]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"- code: t-safe-bomb\n  extra: [{', '.join(anchors)}]\n  name_ru: *a{levels - 1}\n"


IN_MEMORY_FILES = {  # format: (file name, spec, content)
    "data.mos.ru JSON": ("export.json", {**SPEC, "source": {"format": "datamos"}},
                         json.dumps([{"id": "m1", "name": "Фонарь", "geoData": point(*ARBAT)}] * 4000)),
    "CSV": ("lights.csv", {**SPEC, "source": {"format": "csv", "lon": "lon", "lat": "lat"}},
            "id,name,lon,lat\n" + "".join(f"c{i},Фонарь,{ARBAT[0]},{ARBAT[1]}\n" for i in range(4000))),
    "YAML": ("cats.yaml", CATEGORY_SPEC,
             yaml.safe_dump([{**CATEGORY, "code": f"t-safe-{i}"} for i in range(2000)], allow_unicode=True)),
}


@pytest.mark.parametrize("kind", IN_MEMORY_FILES)
def test_a_file_parsed_in_memory_is_capped_before_it_is_parsed(tmp_path, settings, kind):
    name, spec, content = IN_MEMORY_FILES[kind]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    settings.IMPORT_IN_MEMORY_MAX_BYTES = path.stat().st_size - 1
    before = (Facility.objects.count(), apps.get_model("routing", "Category").objects.count())
    with pytest.raises(ImportFailure, match="OURCITY_IMPORT_IN_MEMORY_MAX_MB") as info:
        run_import(path, spec, commit=True, original_name=name)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{name}: ")
    assert str(tmp_path) not in str(info.value)
    assert (Facility.objects.count(), apps.get_model("routing", "Category").objects.count()) == before
    settings.IMPORT_IN_MEMORY_MAX_BYTES = path.stat().st_size  # at the cap it is read
    assert run_import(path, spec).run.status != ImportRun.Status.FAILED


def test_yaml_aliases_that_share_a_little_are_read(tmp_path):
    path = tmp_path / "cats.yaml"
    path.write_text("- &c {code: t-safe-a1, name_ru: Яма, name_en: Pothole, group_ru: Дороги, group_en: Roads, "
                    "rule: district}\n- {<<: *c, code: t-safe-a2}\n", encoding="utf-8")
    assert run_import(path, {**CATEGORY_SPEC, "keywords": None, "keywords_en": None, "attributes": None}).counts["created"] == 2


@pytest.mark.parametrize("where", ["dataset", "spec"])
def test_yaml_aliases_are_refused_before_they_expand(tmp_path, where):
    bomb = tmp_path / "bomb.yaml"
    if where == "dataset":
        bomb.write_text(_bomb_yaml(), encoding="utf-8")
        assert bomb.stat().st_size < 1000
        with pytest.raises(ImportFailure, match="aliases") as info:
            run_import(bomb, CATEGORY_SPEC, original_name="bomb.yaml")
    else:
        bomb.write_text("dataset: t-safe-bomb\ntarget: categories\nkey: code\ncode: code\n"
                        + _bomb_yaml().replace("- code: t-safe-bomb\n  ", "").replace("  name_ru:", "name_ru:"),
                        encoding="utf-8")
        data = yaml_file(tmp_path, [CATEGORY])
        with pytest.raises(ImportFailure, match="aliases") as info:
            run_import(data, bomb, spec_name="bomb.yaml")
    assert "\n" not in str(info.value) and str(tmp_path) not in str(info.value)


@pytest.mark.parametrize("kind", ["data.mos.ru JSON array", "data.mos.ru geoData string"])
def test_deeply_nested_input_is_a_clean_failure_or_a_rejected_row(tmp_path, kind):
    path = tmp_path / "export.json"
    spec = {**SPEC, "source": {"format": "datamos"}}
    if kind == "data.mos.ru JSON array":
        path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
        with pytest.raises(ImportFailure, match="export.json: ") as info:
            run_import(path, spec, original_name="export.json")
        assert "\n" not in str(info.value)
    else:
        rows = [{"id": "n1", "name": "Фонарь", "geoData": "[" * 200_000 + "]" * 200_000},
                {"id": "n2", "name": "Фонарь", "geoData": point(*ARBAT)}]
        path.write_text(json.dumps(rows), encoding="utf-8")
        result = run_import(path, spec)
        assert result.counts["created"] == 1 and result.counts["rejected"] == 1
