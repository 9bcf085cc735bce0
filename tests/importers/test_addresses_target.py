"""The `addresses` import target (importers/addresses.py): any GDAL points with address fields, and the data.mos.ru
address register's shape (the demo's sample); validated by the one engine, classified once, all or nothing; its
commit feeds the place search (facilities.search), typos included."""
import csv
from pathlib import Path

import pytest
from django.conf import settings

from facilities.models import Address, SearchTerm
from facilities.search import places_search
from importers.core import run_import
from importers.errors import ImportFailure
from tests.conftest import point, write_geojson

pytestmark = pytest.mark.django_db
SPEC = {"dataset": "t-addresses", "target": "addresses", "key": "id", "label": "address", "street": "street",
        "house": "house", "district": "district"}
# Inside the demo city (Tverskoy district) and far outside it (Saint Petersburg).
INSIDE = [(37.6056, 55.7655), (37.6010, 55.7640), (37.6100, 55.7600)]
OUTSIDE = (30.3141, 59.9386)


def addresses(tmp_path, rows, name="addresses.geojson"):
    return write_geojson(tmp_path / name, [({"id": k, "address": a, "street": s, "house": h, "district": "Тверской"}, g)
                                           for k, a, s, h, g in rows])


def rejects_of(result):
    with open(result.run.rejects_path, encoding="utf-8") as fh:
        return [(int(r["row"]), r["key"], r["reason"]) for r in csv.DictReader(fh)]


ROWS = [("a1", "Хрустальный переулок, дом 7", "Хрустальный переулок", "7", point(*INSIDE[0])),
        ("a2", "Хрустальный переулок, дом 9", "Хрустальный переулок", "9", point(*INSIDE[1])),
        ("a3", "Квазарная аллея, дом 1", "Квазарная аллея", "1", point(*INSIDE[2]))]


def test_the_demo_city_has_the_address_register_sample():
    labels = set(Address.objects.filter(dataset__code="moscow-addresses").values_list("label", flat=True))
    assert len(labels) == 34 and "Нижегородская улица, дом 3" in labels


def test_points_with_address_fields_are_imported_and_found(tmp_path):
    result = run_import(addresses(tmp_path, ROWS), SPEC, commit=True)
    assert (result.counts["created"], result.counts["rejected"]) == (3, 0)
    a1 = Address.objects.get(dataset__code="t-addresses", source_key="a1")
    assert (a1.label, a1.street, a1.house, a1.district) == ("Хрустальный переулок, дом 7", "Хрустальный переулок",
                                                           "7", "Тверской")
    assert (a1.geom.x, a1.geom.y) == pytest.approx(INSIDE[0])
    # found by the place search at once: word forms, a typo (the commit added the new stems to the vocabulary)
    assert SearchTerm.objects.filter(term="квазарн").exists()
    for typed in ("хрустальный 7", "в Хрустальном переулке 7", "Хрусталный 7"):
        assert places_search(typed)[0].label == "Хрустальный переулок, дом 7", typed
    assert places_search("Квозарная аллея")[0].label == "Квазарная аллея, дом 1"


def test_a_dry_run_changes_nothing(tmp_path):
    before = (Address.objects.count(), SearchTerm.objects.count())
    result = run_import(addresses(tmp_path, ROWS), SPEC, commit=False)
    assert result.counts["created"] == 3
    assert (Address.objects.count(), SearchTerm.objects.count()) == before


def test_a_reimport_classifies_each_row_once(tmp_path):
    run_import(addresses(tmp_path, ROWS), SPEC, commit=True)
    same = run_import(addresses(tmp_path, ROWS), SPEC, commit=True)
    assert (same.counts["created"], same.counts["updated"], same.counts["unchanged"], same.counts["retired"]) == \
        (0, 0, 3, 0)
    moved = [ROWS[0][:4] + (point(*INSIDE[2]),), ("a2", "Хрустальный переулок, дом 9А", *ROWS[1][2:])]
    changed = run_import(addresses(tmp_path, moved), SPEC, commit=True)
    assert (changed.counts["updated"], changed.counts["retired"]) == (2, 1)
    assert set(Address.objects.filter(dataset__code="t-addresses").values_list("source_key", "label")) == {
        ("a1", "Хрустальный переулок, дом 7"), ("a2", "Хрустальный переулок, дом 9А")}
    assert Address.objects.get(dataset__code="t-addresses", source_key="a1").geom.x == pytest.approx(INSIDE[2][0])


def test_a_building_is_stored_as_a_point_on_it(tmp_path):
    lon, lat = INSIDE[0]
    square = {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001],
                                                   [lon, lat + 0.001], [lon, lat]]]}
    run_import(addresses(tmp_path, [("b1", "Хрустальный переулок, дом 11", "", "", square)]), SPEC, commit=True)
    geom = Address.objects.get(dataset__code="t-addresses", source_key="b1").geom
    assert geom.geom_type == "Point" and lon < geom.x < lon + 0.001 and lat < geom.y < lat + 0.001


BAD_ROWS = {
    "no label": (("r", "", "", "", point(*INSIDE[0])), "missing label"),
    "blank label": (("r", "   ", "", "", point(*INSIDE[0])), "missing label"),
    "no geometry": (("r", "Улица, дом 1", "", "", None), "empty geometry"),
    "outside the city": (("r", "Невский проспект, дом 1", "", "", point(*OUTSIDE)), "outside the city"),
    "label too long": (("r", "я" * 501, "", "", point(*INSIDE[0])), "label is 501 characters long"),
    "house too long": (("r", "Улица, дом 1", "", "1" * 101, point(*INSIDE[0])), "house is 101 characters"),
    "no key": (("", "Улица, дом 1", "", "", point(*INSIDE[0])), "missing key"),
}


@pytest.mark.parametrize("row, reason", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_rows_are_rejected_with_their_reason(tmp_path, row, reason):
    result = run_import(addresses(tmp_path, [ROWS[0], row]), SPEC, commit=True)
    assert (result.counts["created"], result.counts["rejected"]) == (1, 1)
    [(row_no, _key, why)] = rejects_of(result)
    assert row_no == 2 and reason in why, why
    assert Address.objects.filter(dataset__code="t-addresses").count() == 1


def test_duplicate_keys_are_rejected(tmp_path):
    result = run_import(addresses(tmp_path, [ROWS[0], ROWS[0]]), SPEC, commit=True)
    assert result.counts["rejected"] == 1 and "duplicate key" in rejects_of(result)[0][2]


@pytest.mark.parametrize("spec, says", [
    ({"label": None}, "'label' is required"),
    ({"lanes": "x"}, "unknown key 'lanes'"),
    ({"label": "no_such_field"}, "no_such_field"),
])
def test_a_bad_spec_is_one_clear_failure(tmp_path, spec, says):
    path = addresses(tmp_path, ROWS)
    full = {k: v for k, v in {**SPEC, **spec}.items() if v is not None}
    with pytest.raises(ImportFailure, match=says):
        run_import(path, full, commit=True)
    assert not Address.objects.filter(dataset__code="t-addresses").exists()


def test_the_data_mos_ru_register_shape_reads_with_its_spec():
    """The demo's spec over its sample: the register's fields (SIMPLE_ADDRESS, P7, L1_VALUE, DISTRICT, geoData)."""
    data = Path(settings.BASE_DIR) / "data"
    result = run_import(data / "moscow" / "address_register_sample.json", data / "specs" / "moscow_addresses.yaml",
                        commit=False)
    assert (result.counts["unchanged"], result.counts["rejected"]) == (34, 0)
    address = Address.objects.get(label="улица Маршала Тухачевского, дом 20, корпус 1")
    assert (address.street, address.house, address.district) == ("улица Маршала Тухачевского", "20",
                                                                 "район Хорошёво-Мнёвники")
