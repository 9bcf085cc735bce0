"""The import pipeline on small real files: formats, validation with rejects, updates and retirement, errors."""
import csv
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pytest
import shapely
from django.conf import settings
from django.core.management import CommandError, call_command

from facilities.models import AdminArea, Authority, Dataset, Facility
from importers.core import run_import
from importers.errors import ImportFailure
from importers.models import ImportRun
from tests.conftest import point, write_geojson

pytestmark = pytest.mark.django_db

DATA = Path(settings.BASE_DIR) / "data"
RED_SQUARE = (37.6208, 55.7539)
KREMLIN = (37.6175, 55.7520)
ARBAT = (37.5930, 55.7494)
OUTSIDE = (30.3141, 59.9386)  # Saint Petersburg

SPEC = {
    "dataset": "test-lights",
    "target": "facilities",
    "key": "id",
    "type": {"field": "kind", "map": {"lamp": "streetlight", "mast": "streetlight"}},
    "types": {"streetlight": {"ru": "Фонарь", "en": "Street light"}},
    "owner": {"match": "code", "field": "owner"},
    "name": "name",
    "attrs": ["kind"],
}


def lights(tmp_path, rows, name="lights.geojson"):
    return write_geojson(tmp_path / name, [({"id": k, "name": n, "kind": kind, "owner": owner}, g)
                                           for k, n, kind, owner, g in rows])


def rejects_of(result):
    with open(result.run.rejects_path, encoding="utf-8") as fh:
        return [(int(r["row"]), r["key"], r["reason"]) for r in csv.DictReader(fh)]


def test_valid_rows_are_imported_and_bad_rows_rejected_with_row_and_reason(tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[37.60, 55.75], [37.61, 55.76], [37.61, 55.75], [37.60, 55.76],
                                                  [37.60, 55.75]]]}
    path = lights(tmp_path, [
        ("1", "Lamp 1", "lamp", "mos", point(*RED_SQUARE)),
        ("2", "Lamp 2", "mast", "donm", point(*KREMLIN)),
        ("", "No key", "lamp", "mos", point(*ARBAT)),                 # row 3: missing key
        ("2", "Twin", "lamp", "mos", point(*ARBAT)),                  # row 4: duplicate key
        ("5", "Nowhere", "lamp", "mos", None),                        # row 5: empty geometry
        ("6", "Piter", "lamp", "mos", point(*OUTSIDE)),               # row 6: outside the city
        ("7", "Orphan", "lamp", "no-such-authority", point(*ARBAT)),  # row 7: unknown owner
        ("8", "Odd", "bench", "mos", point(*ARBAT)),                  # row 8: unknown type value
        ("9", "Bowtie", "lamp", "mos", bowtie),                       # row 9: invalid, repaired
    ])
    result = run_import(path, SPEC, commit=True)
    c = result.counts
    assert (c["read"], c["created"], c["rejected"], c["repaired"]) == (9, 3, 6, 1)
    rejects = rejects_of(result)
    assert [r[0] for r in rejects] == [3, 4, 5, 6, 7, 8]
    reasons = {row: reason for row, _, reason in rejects}
    assert reasons[3] == "missing key"
    assert "duplicate key '2' (first at row 2)" in reasons[4]
    assert reasons[5] == "empty geometry"
    assert "outside the city" in reasons[6]
    assert "unknown owner" in reasons[7] and "no-such-authority" in reasons[7]
    assert reasons[8] == "unknown facility type value 'bench'"
    # the rejects file sits next to the report
    assert Path(result.run.rejects_path).parent == Path(result.run.report_path).parent
    assert "rejected" in Path(result.run.report_path).read_text(encoding="utf-8")
    stored = {f.source_key: f for f in Facility.objects.filter(dataset__code="test-lights")}
    assert set(stored) == {"1", "2", "9"}
    assert stored["2"].owner.code == "donm"
    assert stored["1"].attrs == {"kind": "lamp"}
    assert stored["9"].geom.valid


def test_attrs_keep_any_text_intact(tmp_path):
    odd = 'line\u2028sep "quoted" back\\slash\ttab\u0085next'
    path = lights(tmp_path, [("1", "Lamp", odd, "mos", point(*ARBAT))])
    result = run_import(path, {**SPEC, "type": "streetlight"}, commit=True)
    assert result.counts["created"] == 1
    assert Facility.objects.get(dataset__code="test-lights", source_key="1").attrs == {"kind": odd}


def test_unknown_type_value_is_rejected(tmp_path):
    path = lights(tmp_path, [("1", "Bench", "bench", "mos", point(*ARBAT)), ("2", "Lamp", "lamp", "mos", point(*ARBAT))])
    result = run_import(path, SPEC, commit=True)
    assert rejects_of(result) == [(1, "1", "unknown facility type value 'bench'")]
    assert result.counts["created"] == 1


def test_invalid_geometry_can_be_rejected_instead_of_repaired(tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[37.60, 55.75], [37.61, 55.76], [37.61, 55.75], [37.60, 55.76],
                                                  [37.60, 55.75]]]}
    path = lights(tmp_path, [("1", "Bowtie", "lamp", "mos", bowtie)])
    result = run_import(path, {**SPEC, "invalid_geometry": "reject"}, commit=True)
    assert result.counts["created"] == 0
    assert rejects_of(result)[0][2].startswith("invalid geometry: Self-intersection")


def test_reimport_updates_changes_retires_missing_and_revives_returning(tmp_path):
    first = lights(tmp_path, [("1", "A", "lamp", "mos", point(*RED_SQUARE)), ("2", "B", "lamp", "mos", point(*ARBAT)),
                              ("3", "C", "lamp", "mos", point(*KREMLIN))])
    assert run_import(first, SPEC, commit=True).counts["created"] == 3
    ids = dict(Facility.objects.filter(dataset__code="test-lights").values_list("source_key", "id"))
    again = run_import(first, SPEC, commit=True)
    assert again.run.status == ImportRun.Status.NO_CHANGE and again.counts["unchanged"] == 3

    changed = lights(tmp_path, [("1", "A renamed", "lamp", "mos", point(*RED_SQUARE)),
                                ("2", "B", "lamp", "mos", point(ARBAT[0] + 0.001, ARBAT[1]))], name="v2.geojson")
    result = run_import(changed, SPEC, commit=True)
    assert {k: result.counts[k] for k in ("created", "updated", "unchanged", "retired")} == \
        {"created": 0, "updated": 2, "unchanged": 0, "retired": 1}
    rows = {f.source_key: f for f in Facility.objects.filter(dataset__code="test-lights")}
    assert {k: f.id for k, f in rows.items()} == ids  # ids survive the new generation
    assert rows["1"].name == "A renamed"
    assert rows["3"].valid_to is not None  # retired, not deleted
    assert Facility.objects.active().filter(dataset__code="test-lights").count() == 2

    back = run_import(first, SPEC, commit=True)
    assert (back.counts["updated"], back.counts["retired"]) == (3, 0)
    assert Facility.objects.get(pk=ids["3"]).valid_to is None


def test_a_rejected_row_does_not_retire_what_the_registry_has(tmp_path):
    run_import(lights(tmp_path, [("1", "A", "lamp", "mos", point(*RED_SQUARE)),
                                 ("2", "B", "lamp", "mos", point(*ARBAT))]), SPEC, commit=True)
    # key 2 comes back broken (no geometry): rejected, and kept as it was rather than retired
    result = run_import(lights(tmp_path, [("1", "A", "lamp", "mos", point(*RED_SQUARE)),
                                          ("2", "B", "lamp", "mos", None)], name="broken.geojson"), SPEC, commit=True)
    assert (result.counts["rejected"], result.counts["retired"]) == (1, 0)
    assert Facility.objects.active().filter(dataset__code="test-lights").count() == 2
    ao = DATA / "moscow/ao.geojson"
    frame = gpd.read_file(ao, engine="pyogrio")
    frame.loc[0, "NAME"] = ""
    broken = tmp_path / "ao_broken.geojson"
    frame.to_file(broken, driver="GeoJSON", engine="pyogrio")
    areas = run_import(broken, DATA / "specs/moscow_okrugs.yaml", commit=True)
    assert (areas.counts["rejected"], areas.counts["retired"], areas.counts["unchanged"]) == (1, 0, 11)
    assert AdminArea.objects.active().filter(level="okrug").count() == 12


def test_partial_mode_does_not_retire(tmp_path):
    run_import(lights(tmp_path, [("1", "A", "lamp", "mos", point(*RED_SQUARE)),
                                 ("2", "B", "lamp", "mos", point(*ARBAT))]), SPEC, commit=True)
    result = run_import(lights(tmp_path, [("3", "C", "lamp", "mos", point(*KREMLIN))], name="more.geojson"),
                        {**SPEC, "mode": "partial"}, commit=True)
    assert (result.counts["created"], result.counts["retired"]) == (1, 0)
    assert Facility.objects.active().filter(dataset__code="test-lights").count() == 3


def test_dry_run_reports_but_changes_nothing(tmp_path):
    path = lights(tmp_path, [("1", "A", "lamp", "mos", point(*RED_SQUARE))])
    datasets = Dataset.objects.count()
    result = run_import(path, SPEC)
    assert result.counts["created"] == 1
    assert result.run.status == ImportRun.Status.DRY_RUN
    assert "Dry run: nothing was changed" in result.report_text
    assert not Facility.objects.filter(dataset__code="test-lights").exists()
    assert Dataset.objects.count() == datasets
    run = ImportRun.objects.get(pk=result.run.pk)
    assert (run.status, run.commit, run.counts["created"]) == ("dry_run", False, 1)
    assert len(run.file_sha256) == 64 and run.actor


def test_reprojects_from_the_files_crs(tmp_path):
    frame = gpd.GeoDataFrame({"id": ["1"], "name": ["Lamp"], "kind": ["lamp"], "owner": ["mos"]},
                             geometry=[shapely.Point(*RED_SQUARE)], crs="EPSG:4326").to_crs("EPSG:3857")
    path = tmp_path / "lights3857.gpkg"
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    result = run_import(path, SPEC, commit=True)
    assert result.counts["created"] == 1 and result.counts["reprojected_from"] == "EPSG:3857"
    stored = Facility.objects.get(dataset__code="test-lights", source_key="1")
    assert abs(stored.geom.x - RED_SQUARE[0]) < 1e-7 and abs(stored.geom.y - RED_SQUARE[1]) < 1e-7


def test_reads_shapefile_zip_kml_and_csv(tmp_path):
    frame = gpd.GeoDataFrame({"id": ["1", "2"], "name": ["A", "B"], "kind": ["lamp", "mast"], "owner": ["mos", "mos"]},
                             geometry=[shapely.Point(*RED_SQUARE), shapely.Point(*ARBAT)], crs="EPSG:4326")
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    frame.to_file(shp_dir / "lights.shp", engine="pyogrio")
    zipped = tmp_path / "lights.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for part in shp_dir.iterdir():
            zf.write(part, part.name)
    assert run_import(zipped, SPEC).counts["created"] == 2

    kml = tmp_path / "lights.kml"
    frame.rename(columns={"name": "Name"}).to_file(kml, driver="LIBKML", engine="pyogrio")
    kml_spec = {**SPEC, "name": "Name"}
    assert run_import(kml, kml_spec).counts["created"] == 2

    table = tmp_path / "lights.csv"
    table.write_text("id,name,kind,owner,lon,lat\n1,A,lamp,mos,37.6208,55.7539\n2,B,lamp,mos,abc,55.75\n",
                     encoding="utf-8")
    result = run_import(table, {**SPEC, "source": {"lon": "lon", "lat": "lat"}})
    assert result.counts["created"] == 1
    assert result.rejects == [(2, "2", "empty geometry")]


def test_reads_data_mos_ru_exports_json_and_zip():
    hospitals = run_import(DATA / "moscow/raw/datamos_hospitals_adult.json", DATA / "specs/moscow_hospitals.yaml")
    assert hospitals.counts["read"] == 44 and hospitals.counts["unchanged"] == 42
    spec = {"dataset": "edu-from-zip", "target": "facilities", "key": "global_id", "type": "school",
            "owner": {"match": "inn", "field": "INN"}, "name": "ShortName"}
    schools = run_import(DATA / "moscow/raw/datamos_education_orgs_2263.zip", spec)
    assert schools.counts["read"] == 590
    assert schools.counts["created"] + schools.counts["rejected"] == 590
    assert schools.counts["created"] >= 580


def test_authorities_and_areas_reimport_is_a_no_op_and_changes_are_seen(tmp_path):
    spec = {"dataset": "test-contractors", "target": "authorities", "key": "id", "code": "c-{id}",
            "name": "name", "kind": "contractor", "inn": "inn", "parent": "mos"}
    rows = [{"id": "1", "name": "ООО Свет", "inn": "7701234567"}, {"id": "2", "name": "ООО Двор", "inn": "12"}]
    path = tmp_path / "c.json"
    write_geojson(path, [(r, None) for r in rows])
    result = run_import(path, spec, commit=True)
    assert result.counts["created"] == 1
    assert result.rejects == [(2, "2", "INN '12' is not 10 or 12 digits")]
    contractor = Authority.objects.get(code="c-1")
    assert contractor.parent.code == "mos" and contractor.departments.count() == 1
    assert run_import(path, spec, commit=True).run.status == ImportRun.Status.NO_CHANGE
    rows[0]["name"] = "ООО Свет и Тепло"
    write_geojson(path, [(r, None) for r in rows])
    assert run_import(path, spec, commit=True).counts["updated"] == 1
    assert Authority.objects.get(code="c-1").name == "ООО Свет и Тепло"


# ---- bad input: one clear error, nothing changed ----------------------------------------------------------------

def registry_state():
    return (Facility.objects.count(), AdminArea.objects.count(), Authority.objects.count(), Dataset.objects.count())


@pytest.mark.parametrize("spec_change, message", [
    ({"nmae": "name"}, "spec: unknown key 'nmae'"),
    ({"name": "title"}, "spec refers to field 'title', which the file does not have"),
    ({"target": "roads"}, "'target' must be one of"),
    ({"type": "no-such-type"}, "facility type 'no-such-type' does not exist"),
    ({"source": {"crs": "EPSG:999999"}}, "unknown CRS"),
    ({"source": {"crs": "EPSG:3857"}}, "the file declares"),
    ({"owner": {"match": "phone", "field": "owner"}}, "owner.match must be"),
])
def test_bad_specs_fail_with_one_clear_line(tmp_path, spec_change, message):
    path = lights(tmp_path, [("1", "A", "lamp", "mos", point(*RED_SQUARE))])
    before = registry_state()
    with pytest.raises(ImportFailure) as err:
        run_import(path, {**SPEC, **spec_change}, commit=True)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert registry_state() == before


def test_unreadable_and_missing_files_fail_cleanly(tmp_path):
    garbage = tmp_path / "broken.geojson"
    garbage.write_bytes(b"\x00\x01 this is not a dataset")
    before = registry_state()
    with pytest.raises(ImportFailure, match="can not be read"):
        run_import(garbage, SPEC, commit=True)
    with pytest.raises(ImportFailure, match="no such file"):
        run_import(tmp_path / "missing.geojson", SPEC, commit=True)
    assert registry_state() == before
    assert ImportRun.objects.filter(status="failed", file_name="broken.geojson").exists()


def test_coordinates_that_do_not_fit_the_crs_are_an_error(tmp_path):
    # metres (EPSG:3857) in a file that says nothing, with the spec claiming EPSG:4326
    path = tmp_path / "metres.csv"
    path.write_text("id,name,kind,owner,x,y\n1,A,lamp,mos,4187880.5,7509270.1\n", encoding="utf-8")
    before = registry_state()
    with pytest.raises(ImportFailure, match="coordinates do not fit EPSG:4326"):
        run_import(path, {**SPEC, "source": {"lon": "x", "lat": "y", "crs": "EPSG:4326"}}, commit=True)
    assert registry_state() == before


def test_a_file_without_crs_needs_one_in_the_spec(tmp_path):
    frame = gpd.GeoDataFrame({"id": ["1"], "name": ["A"], "kind": ["lamp"], "owner": ["mos"]},
                             geometry=[shapely.Point(*RED_SQUARE)])
    path = tmp_path / "nocrs.shp"
    frame.to_file(path, engine="pyogrio")
    with pytest.raises(ImportFailure, match="does not declare its CRS"):
        run_import(path, SPEC)
    assert run_import(path, {**SPEC, "source": {"crs": "EPSG:4326"}}).counts["created"] == 1


def test_command_dry_run_by_default_and_clear_errors(tmp_path, capsys):
    path = lights(tmp_path, [("1", "A", "lamp", "mos", point(*RED_SQUARE))])
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(SPEC), encoding="utf-8")
    call_command("import_dataset", str(path), "--spec", str(spec_path))
    out = capsys.readouterr().out
    assert "created              1" in out and "Dry run" in out
    assert not Facility.objects.filter(dataset__code="test-lights").exists()
    with pytest.raises(CommandError, match="spec: unknown key"):
        spec_path.write_text(json.dumps({**SPEC, "colour": "red"}), encoding="utf-8")
        call_command("import_dataset", str(path), "--spec", str(spec_path))


def test_command_exit_code_and_single_line_on_error(tmp_path):
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text("dataset: x\ntarget: facilities\nkey: id\ntype: lamp\nunknown_field: 1\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "manage.py", "import_dataset", str(DATA / "moscow/ao.geojson"),
                           "--spec", str(bad_spec), "--commit"], cwd=settings.BASE_DIR, capture_output=True,
                          text=True, env={**__import__("os").environ, "OURCITY_DB_NAME": settings.DATABASES["default"]["NAME"]})
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "unknown key 'unknown_field'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("values", [
    ["lamp", "7703167477", "", "Фонарь №1"],  # nothing to escape (the usual column)
    ["lamp", 'say "hi"', "back\\slash", "a\tb\nc\rd", "bell\x07", "nul\x00x", "\u2028 and \u0085"],  # a mix
    ['"', "\\", "\x1f"],
])
def test_attribute_texts_become_json_strings_that_read_back_as_stored(values):
    from importers.stream import json_string

    out = json_string(pa.array(values)).to_pylist()
    # quotes, backslashes, tab, newline and carriage return kept; other control characters become a space
    kept = [re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", v) for v in values]
    assert [json.loads(s) for s in out] == kept
