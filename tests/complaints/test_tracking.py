"""Tracking codes: short, unambiguous, random, and found again however a resident types them; and every spelling
that finds a complaint is one that public text never shows (complaints.tracking.redact). Confirmation keys: the
same, and only the complaint's own key counts."""
import re
import sys
import unicodedata

import pytest
from django.test import override_settings

from complaints.tracking import (_PLANES, ALPHABET, LOOK_ALIKES, confirmation_key_matches, fold,
                                 new_confirmation_secret, new_tracking_code, normalize_tracking_code, redact,
                                 secret_spans)
from complaints.tracking import confirmation_key as key_of

from .spellings import all_spellings, case_and_separator_spellings

# A code with many letters that have Cyrillic look-alikes.
CODE = "K7MA-HPCE-TX4B"
SPELLINGS = all_spellings(CODE)
MARK = "[tracking code removed]"


class Stub:
    """What confirmation_key reads of a complaint."""

    def __init__(self, secret):
        self.confirmation_secret = secret


def test_codes_use_an_unambiguous_alphabet_in_three_groups():
    assert not set("01ILOU") & set(ALPHABET)
    for _ in range(200):
        assert re.fullmatch(rf"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}", new_tracking_code())


def test_codes_do_not_repeat():
    codes = {new_tracking_code() for _ in range(20000)}
    assert len(codes) == 20000


@pytest.mark.parametrize("label", list(SPELLINGS))
def test_the_lookup_finds_every_spelling(label):
    assert normalize_tracking_code(SPELLINGS[label]) == CODE
    assert normalize_tracking_code(f"  {SPELLINGS[label]}\n") == CODE


@pytest.mark.parametrize("label", list(SPELLINGS))
@pytest.mark.parametrize("lang, mark", [("en", MARK), ("ru", "[код обращения скрыт]")])
def test_redact_removes_every_spelling_from_text(label, lang, mark):
    spelling = SPELLINGS[label]
    for text, expected in [
        (f"Мой код {spelling}, яма на месте", f"Мой код {mark}, яма на месте"),
        (spelling, mark),
        (f"({spelling})", f"({mark})"),
        (f"код:{spelling}.", f"код:{mark}."),
        (f"{spelling}; {spelling}", f"{mark}; {mark}"),
        (f"{spelling}\n{spelling}", mark),  # one after another: one run, removed whole
    ]:
        assert redact(text, lang) == expected, (label, text)


@pytest.mark.parametrize("label", list(SPELLINGS))
def test_what_the_lookup_finds_in_any_part_of_a_text_is_removed(label):
    """Whatever is left of a text after redaction finds no complaint, from any position on."""
    text = f"Обращение {SPELLINGS[label]} не наше, см. тоже x{SPELLINGS[label]}y"
    left = redact(text, "en")
    for start in range(len(left)):
        for end in range(start + 12, min(len(left), start + 60) + 1):
            assert normalize_tracking_code(left[start:end]) != CODE, (label, left[start:end])


def test_a_code_inside_a_longer_run_is_removed_too():
    bare = CODE.replace("-", "")
    for text in (f"X{bare}", f"{bare}Z", f"AB{CODE}CD", f"ZZZZ-{CODE}"):
        assert bare[:8] not in fold(redact(text, "en")).replace("-", ""), text


def test_characters_that_read_as_several_symbols():
    code = "TPSS-Q9XR-K7M2"
    for spelling in ("TPß-Q9XR-K7M2", "tpß q9xr k7m2", "TPSS-Q9XR-K7M2"):
        assert normalize_tracking_code(spelling) == code
        assert redact(f"код {spelling}!", "en") == f"код {MARK}!"
    assert secret_spans("x ſtpß q9xr k7m2") == [(3, 16)]  # "ſ" reads as "S": the run is longer than a code
    assert redact("x ſtpß q9xr k7m2", "en") == f"x ſ{MARK}"


def test_the_fold_table_leaves_out_only_characters_that_read_as_themselves():
    """Outside the planes it scans, this Python's Unicode has only ideographs and unassigned or private code points;
    the ideographs it skips inside them have no case and no other form, and no look-alike is one."""
    scanned = set().union(*_PLANES)
    outside = [cp for cp in range(sys.maxunicode + 1) if cp not in scanned]
    assert len(outside) > 800_000
    assert {unicodedata.category(chr(cp)) for cp in outside} <= {"Cn", "Co", "Cs", "Lo"}
    assert all(unicodedata.category(c) == "Lu" for c in LOOK_ALIKES)


@pytest.mark.parametrize("text", [
    "", "Мусор во дворе не вывозят уже неделю, контейнеры переполнены.",
    "ул. Тверская, д. 25, кв. 348; подъезд 2, этаж 7", "+7 (495) 234-56-78, 8 985 234 56 78", "2026-12-01 14:30",
    "Обращение №12345 и #67890", "https://example.org/a/b?c=d", "K7MA-HPCE", "K7MA-HPCE-TX4", "K7MA-HPCE-TX41",
    "K7MA-HPCE-TX4O", "ремонт дороги", "КАМАЗ стоит на газоне",
])
def test_text_without_a_code_is_left_as_it_is(text):
    assert redact(text, "en") == text
    assert redact(None) is None


def test_a_known_false_positive_twelve_code_symbols_in_three_groups():
    """Any three groups of four symbols are a code's spelling (the lookup takes them): so they go too."""
    assert normalize_tracking_code("than that year") == "THAN-THAT-YEAR"
    assert redact("more than that year", "en") == f"more {MARK}"


@pytest.mark.parametrize("raw", [
    "", None, "K7M2-Q9XR", "K7M2-Q9XR-TP4D-AAAA", "K7M2-Q9XR-TP4O", "'; drop table --",
    "K7 M2 Q9XR TP4D",  # separators inside a group: not a spelling the lookup takes
    "K7M2-Q9XR-TP4D" + " " * 200,  # far too long to be a code
])
def test_normalize_refuses_what_can_not_be_a_code(raw):
    assert normalize_tracking_code(raw) == ""


# --- confirmation keys ----------------------------------------------------------------------------------

def test_a_key_is_four_groups_of_the_alphabet_and_differs_per_complaint():
    keys = {key_of(Stub(new_confirmation_secret())) for _ in range(2000)}
    assert len(keys) == 2000
    for key in keys:
        assert re.fullmatch(rf"[{ALPHABET}]{{4}}(-[{ALPHABET}]{{4}}){{3}}", key)


@pytest.mark.parametrize("label", list(case_and_separator_spellings("ABCD-EFGH-JKMN-PQRS")))
def test_a_key_is_accepted_however_typed_and_never_shown(label):
    complaint = Stub(new_confirmation_secret())
    key = key_of(complaint)
    spelling = case_and_separator_spellings(key)[label]
    assert confirmation_key_matches(complaint, spelling)
    assert not confirmation_key_matches(Stub(new_confirmation_secret()), spelling)
    assert redact(f"ключ {spelling}, вот", "en") == f"ключ {MARK}, вот"


def test_a_wrong_or_missing_key_does_not_match():
    complaint = Stub(new_confirmation_secret())
    key = key_of(complaint)
    for wrong in ("", None, key[:-1], key[:-1] + ("Z" if key[-1] != "Z" else "Y"), key + "-AAAA",
                  complaint.confirmation_secret, "x" * 10_000):
        assert not confirmation_key_matches(complaint, wrong), wrong


def test_keys_follow_the_secret_key_and_its_fallbacks():
    complaint = Stub(new_confirmation_secret())
    with override_settings(SECRET_KEY="old-secret-key-" * 4):
        old = key_of(complaint)
    assert old != key_of(complaint)
    assert not confirmation_key_matches(complaint, old)
    with override_settings(SECRET_KEY_FALLBACKS=["old-secret-key-" * 4]):
        assert confirmation_key_matches(complaint, old)
        assert confirmation_key_matches(complaint, key_of(complaint))
