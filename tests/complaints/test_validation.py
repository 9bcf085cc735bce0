"""Attributes of every Open311 datatype, text fields and locations are checked before anything is stored."""
import math

import pytest
from django.contrib.gis.geos import Point

from complaints.errors import ComplaintError
from complaints.validation import clean_attributes, clean_contact, clean_location, clean_text


def clean(category, **raw):
    return clean_attributes(category, {"kind": "k1", **raw})


def test_every_datatype_is_normalised(category_with_attributes):
    result = clean(category_with_attributes, floor="3", seen_at="2026-11-20T14:30:00+03:00", note=" broken ",
                   details="long\ntext", extras=["k2", "k1", "k2"])
    assert result == {"kind": "k1", "floor": 3, "seen_at": "2026-11-20T14:30:00+03:00", "note": "broken",
                      "details": "long\ntext", "extras": ["k2", "k1"]}


def test_optional_attributes_may_be_absent_or_empty(category_with_attributes):
    assert clean(category_with_attributes, floor="", extras=[]) == {"kind": "k1"}


@pytest.mark.parametrize("value, expected", [("2.5", 2.5), ("-4", -4), ("1e3", 1000), (" 7 ", 7)])
def test_numbers(category_with_attributes, value, expected):
    assert clean(category_with_attributes, floor=value)["floor"] == expected


@pytest.mark.parametrize("value", ["abc", "NaN", "inf", "-Infinity", "1e999999", "sNaN", "1,5", ["1", "2"]])
def test_bad_numbers_are_refused_naming_the_attribute(category_with_attributes, value):
    with pytest.raises(ComplaintError, match="floor") as error:
        clean(category_with_attributes, floor=value)
    assert error.value.field == "floor"


def test_datetimes_get_a_zone(category_with_attributes):
    assert clean(category_with_attributes, seen_at="2026-11-20T14:30")["seen_at"] == "2026-11-20T14:30:00+03:00"
    assert clean(category_with_attributes, seen_at="2026-11-20T11:30:00Z")["seen_at"] == "2026-11-20T11:30:00+00:00"


@pytest.mark.parametrize("value", ["yesterday", "20.11.2026", "2026-13-01T00:00:00"])
def test_bad_datetimes_are_refused(category_with_attributes, value):
    with pytest.raises(ComplaintError, match="seen_at"):
        clean(category_with_attributes, seen_at=value)


def test_singlevaluelist_must_be_a_key(category_with_attributes):
    assert clean(category_with_attributes, kind="3")["kind"] == "3"  # keys are compared as strings
    with pytest.raises(ComplaintError, match="kind.*one"):
        clean(category_with_attributes, kind="one")  # a name, not a key
    with pytest.raises(ComplaintError, match="kind"):
        clean(category_with_attributes, kind=["k1", "k2"])


def test_multivaluelist_takes_a_list_of_keys(category_with_attributes):
    assert clean(category_with_attributes, extras="k2")["extras"] == ["k2"]  # one value sent as a plain field
    with pytest.raises(ComplaintError, match="extras.*k9"):
        clean(category_with_attributes, extras=["k1", "k9"])
    with pytest.raises(ComplaintError, match="extras"):
        clean(category_with_attributes, extras=[["k1"]])


def test_required_attribute_must_be_present(category_with_attributes):
    for raw in ({}, {"kind": ""}, {"kind": []}):
        with pytest.raises(ComplaintError, match="Fill in “kind”") as error:
            clean_attributes(category_with_attributes, raw)
        assert error.value.field == "kind"


def test_unknown_and_informational_attributes(category_with_attributes):
    with pytest.raises(ComplaintError, match="colour"):
        clean(category_with_attributes, colour="red")
    # A non-variable attribute is information for the resident: an answer to it is ignored, not an error.
    assert "info" not in clean(category_with_attributes, info="whatever")


def test_string_and_text_lengths(category_with_attributes):
    assert len(clean(category_with_attributes, details="x" * 4000)["details"]) == 4000
    with pytest.raises(ComplaintError, match="details"):
        clean(category_with_attributes, details="x" * 4001)
    with pytest.raises(ComplaintError, match="note"):
        clean(category_with_attributes, note="x" * 1001)


def test_text_fields():
    assert clean_text("  hello ", field="description", limit=4000) == "hello"
    assert clean_text(None, field="description", limit=4000) == ""
    with pytest.raises(ComplaintError, match="Description"):
        clean_text("x" * 4001, field="description", limit=4000)
    with pytest.raises(ComplaintError, match="NUL"):
        clean_text("a\x00b", field="description", limit=4000)


# Every character XML 1.0 can't carry (C0 controls but tab, line feed and carriage return): one rule, for every way in.
CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]


@pytest.mark.parametrize("char", CONTROLS, ids=[f"0x{ord(c):02x}" for c in CONTROLS])
def test_a_control_character_is_refused_in_any_text(char):
    with pytest.raises(ComplaintError, match="Description"):
        clean_text(f"a{char}b", field="description", limit=4000)


@pytest.mark.parametrize("char", ["\t", "\n", "\r"])
def test_tabs_and_line_breaks_are_kept(char):
    assert clean_text(f"a{char}b", field="description", limit=4000) == f"a{char}b"


def test_contact_fields():
    assert clean_contact(email=" a@example.org ", phone="+7 495 000-00-00") == {
        "email": "a@example.org", "phone": "+7 495 000-00-00"}
    with pytest.raises(ComplaintError, match="e-mail"):
        clean_contact(email="not-an-address")
    with pytest.raises(ComplaintError, match="Phone"):  # by its label
        clean_contact(phone="1" * 51)


@pytest.mark.parametrize("point", [(37.6, 91), (181, 55.7), (math.nan, 55.7), (37.6, math.inf), ("x", 1), (1,), None])
def test_bad_locations_are_refused(point):
    with pytest.raises(ComplaintError) as error:
        clean_location(point)
    assert error.value.field == "location"


def test_locations():
    assert clean_location((37.6, 55.7)) == (37.6, 55.7)
    assert clean_location(("37.6", "55.7")) == (37.6, 55.7)
    assert clean_location(Point(37.6, 55.7, srid=4326)) == (37.6, 55.7)
    x, y = clean_location(Point(4187000, 7509000, srid=3857))  # web mercator metres
    assert 37 < x < 38 and 55 < y < 56
