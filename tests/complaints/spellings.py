"""Every way a resident or a staff member may write a tracking code (or a confirmation key) in text, for the tests
that prove the lookup finds them and public output removes them (tests/complaints/test_tracking.py,
tests/open311/test_tracking_code_secrecy.py)."""
CASES = {
    "upper": str.upper,
    "lower": str.lower,
    "mixed": lambda s: "".join(c.lower() if i % 2 else c.upper() for i, c in enumerate(s)),
}
SEPARATORS = {
    "dash": "-", "space": " ", "underscore": "_", "none": "", "dot": ".", "spaced dash": " - ", "en dash": "\u2013",
    "em dash": "\u2014", "minus sign": "\u2212", "hyphen": "\u2010", "no-break space": "\u00a0", "tab": "\t",
    "newline": "\n", "ideographic space": "\u3000", "two spaces": "  ",
}
# Latin letters and the Cyrillic ones that look the same.
CYRILLIC = str.maketrans("ABEKMHPCTXY", "АВЕКМНРСТХУ")


def groups(canonical):
    return canonical.split("-")


def case_and_separator_spellings(canonical):
    """{label: spelling}: each case x each separator between the groups (the class the complaint page accepts)."""
    return {f"{case} / {sep_name}": sep.join(change(g) for g in groups(canonical))
            for case, change in CASES.items() for sep_name, sep in SEPARATORS.items()}


def special_spellings(canonical):
    """{label: spelling}: the same symbols as they may come out of a phone, a copy-paste or another keyboard."""
    bare = canonical.replace("-", "")
    return {
        "Cyrillic look-alikes": canonical.translate(CYRILLIC),
        "full-width": "".join(chr(ord(c) + 0xFEE0) for c in bare),
        "zero-width spaces between all": "\u200b".join(canonical),
        "soft hyphens inside the groups": "-".join("\u00ad".join(g) for g in groups(canonical)),
        "combining accents": "".join(c + "\u0301" if c.isalpha() else c for c in canonical),
        "control characters as separators": "\x01".join(groups(canonical)),
        "mathematical bold letters": "".join(chr(0x1D400 + ord(c) - ord("A")) if c.isalpha() else c
                                             for c in canonical),
    }


def all_spellings(canonical):
    return {**case_and_separator_spellings(canonical), **special_spellings(canonical)}
