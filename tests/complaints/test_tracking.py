"""Tracking codes: short, unambiguous, random, and found again however a resident types them."""
import re

from complaints.tracking import ALPHABET, new_tracking_code, normalize_tracking_code


def test_codes_use_an_unambiguous_alphabet_in_three_groups():
    assert not set("01ILOU") & set(ALPHABET)
    for _ in range(200):
        assert re.fullmatch(rf"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}", new_tracking_code())


def test_codes_do_not_repeat():
    codes = {new_tracking_code() for _ in range(20000)}
    assert len(codes) == 20000


def test_normalize_accepts_what_a_resident_types():
    assert normalize_tracking_code("k7m2 q9xr tp4d") == "K7M2-Q9XR-TP4D"
    assert normalize_tracking_code(" K7M2Q9XRTP4D ") == "K7M2-Q9XR-TP4D"
    assert normalize_tracking_code("k7m2-q9xr-tp4d") == "K7M2-Q9XR-TP4D"


def test_normalize_refuses_what_can_not_be_a_code():
    for raw in ["", None, "K7M2-Q9XR", "K7M2-Q9XR-TP4D-AAAA", "K7M2-Q9XR-TP4O", "'; drop table --"]:
        assert normalize_tracking_code(raw) == ""
