"""Tracking codes and confirmation keys: what they are, how a resident may type them, and how they are kept out of
public text. This module is the one owner of "what a tracking code looks like in text".

- The **tracking code** (12 symbols, "K7M2-Q9XR-TP4D") names a complaint for its resident: it opens the
  complaint's page, which shows only what is public anyway.
- The **confirmation key** (16 symbols, "ABCD-EFGH-JKMN-PQRS") lets the resident confirm or deny the department's
  answer. It is sent only to the resident (the tracking mail, and once on the web right after filing), never
  stored: it is an HMAC, under SECRET_KEY, of a random per-complaint secret (Complaint.confirmation_secret), so a
  copy of the database (a replica, a backup, an admin page) does not hold it.

How a resident may type either: any case; between the groups a run of separators (white space of any kind, a dash
of any kind, the minus sign, "_" or "."), or nothing; invisible characters (zero-width spaces, soft hyphens,
combining marks, control characters) anywhere; letters in compatibility forms (full-width "Ｋ", ligatures,
"ſ") or with accents; and Cyrillic or Greek letters that look like Latin ones ("К" for "K"). `fold()` says what a
text reads as; the lookup (`normalize_tracking_code`) and the redaction (`redact`) both read text through it, so
every spelling the complaint page accepts is also one that public output removes. The redaction takes more than
the lookup: any run of three or more groups (so a confirmation key, and codes written one after another, go
whole), also inside a longer run of symbols.

The price is a few false positives: any 12 letters and digits of the code alphabet in three groups of four look
like a code ("than that year", "strengthened"), and are shown as "[tracking code removed]". Public text is kept as
it was written (the history is append-only and staff see what residents wrote); it is redacted when it is shown,
which covers text stored before this rule too.
"""
import functools
import hmac
import itertools
import re
import secrets
import unicodedata

from django.conf import settings
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

# Crockford's base32 without 0 and 1 (no I, L, O, U either): nothing to confuse when typed or read out.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS, GROUP_LEN = 3, 4  # 12 symbols: about 59 bits from `secrets`, e.g. "K7M2-Q9XR-TP4D"
KEY_GROUPS = 4  # the confirmation key: 16 symbols, about 78 bits
INPUT_MAX = 200  # longer input is not a code or a key, however it is spelt

# How fold() writes what it reads: a symbol as itself (upper case), a separator as "-", an invisible character as
# NUL; any other character is left as it is.
SEP, INVISIBLE = "-", "\x00"
_SYMBOL = f"[{ALPHABET}]"
_GROUP = rf"{_SYMBOL}(?:{INVISIBLE}*{_SYMBOL}){{{GROUP_LEN - 1}}}"
_BETWEEN = f"[{SEP}{INVISIBLE}]*"
# In folded text: three or more groups in a row (a code, a key, or several of them one after another: each would
# leave part of the next visible if the match stopped at 3 or 4 groups), also inside a longer run of symbols.
_SECRET_IN_TEXT = re.compile(rf"{_GROUP}(?:{_BETWEEN}{_GROUP}){{{GROUPS - 1},}}{INVISIBLE}*")
_CODE = re.compile(rf"({_SYMBOL}{{{GROUP_LEN}}})" + rf"{SEP}*({_SYMBOL}{{{GROUP_LEN}}})" * (GROUPS - 1))
_KEY = re.compile(rf"({_SYMBOL}{{{GROUP_LEN}}})" + rf"{SEP}*({_SYMBOL}{{{GROUP_LEN}}})" * (KEY_GROUPS - 1))

# Letters of other scripts that look like a symbol of the alphabet (upper case: fold() upper-cases first).
LOOK_ALIKES = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "З": "3", "К": "K", "М": "M", "Н": "H", "Р": "P", "С": "C", "Т": "T", "Х": "X",
    "У": "Y", "Ү": "Y", "Һ": "H", "Ѕ": "S", "Ј": "J", "Ԛ": "Q", "Ԝ": "W",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Κ": "K", "Μ": "M", "Ν": "N", "Ρ": "P", "Τ": "T", "Χ": "X",
    "Υ": "Y",
}
_SEPARATOR_EXTRA = "_.\u2212"  # low line, full stop, minus sign; besides white space and dashes (Pd)


def _fold_char(ch):
    """What one character reads as (see fold)."""
    category = unicodedata.category(ch)
    if category in ("Cf", "Mn", "Me") or (category == "Cc" and not ch.isspace()):
        return INVISIBLE
    if ch.isspace() or category in ("Pd", "Pc") or ch in _SEPARATOR_EXTRA:
        return SEP
    parts = [c for c in unicodedata.normalize("NFKD", ch) if unicodedata.category(c) not in ("Mn", "Me")]
    if not parts:
        return INVISIBLE
    if all(c.isspace() or unicodedata.category(c) in ("Pd", "Pc") or c in _SEPARATOR_EXTRA for c in parts):
        return SEP  # "…" (three full stops), a non-breaking space
    symbols = "".join(LOOK_ALIKES.get(u, u) for c in parts for u in c.upper())
    if all(s in ALPHABET for s in symbols):
        return symbols  # usually one; "ß" reads as "SS", "㎡" as "M2"
    return ch


# The planes that hold characters which fold to something else: the BMP, the Supplementary Multilingual Plane
# (mathematical letters, enclosed alphanumerics), the Supplementary Ideographic Plane (compatibility ideographs) and
# the Supplementary Special-purpose Plane (tags, variation selectors: invisible). The others hold only ideographs,
# unassigned and private-use code points, which read as themselves.
_PLANES = (range(0x00000, 0x30000), range(0xE0000, 0xE1000))


# Process-local memo: from Unicode's tables, which never change while the process lives.
@functools.cache
def _table():
    """str.translate's table: every character whose fold is not the character itself (built on first use, about
    0.1 s)."""
    table = {}
    for cp in itertools.chain(*_PLANES):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category in ("Cn", "Co", "Cs"):  # unassigned, private use, surrogates: read as themselves
            continue
        if category == "Lo" and unicodedata.is_normalized("NFKD", ch):  # ideographs, syllables: no case, no form
            continue
        folded = _fold_char(ch)
        if folded != ch:
            table[cp] = folded
    return table


def _char_class(chars):
    """A regex character class of `chars`, as ranges."""
    codes, ranges = sorted(set(map(ord, chars))), []
    for cp in codes:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "[" + "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                         for a, b in ranges) + "]"


# Process-local memo: built from _table() and constants only.
@functools.cache
def _raw_patterns():
    """(secrets in text, characters the slow path is for), over the text as written: the fast path of
    secret_spans() runs one regular expression and no translation. The slow path is for characters that read as
    several symbols ("ß") and for those outside the Basic Multilingual Plane (mathematical letters, tags)."""
    symbols, separators, invisible, several = set(ALPHABET), {SEP}, {INVISIBLE}, set()
    for cp, folded in _table().items():
        if cp > 0xFFFF:  # outside the BMP: sre checks such classes range by range (slow); the slow path has them
            continue
        if folded == SEP:
            separators.add(chr(cp))
        elif folded == INVISIBLE:
            invisible.add(chr(cp))
        elif len(folded) == 1:
            symbols.add(chr(cp))
        else:
            several.add(chr(cp))
    sym, inv = _char_class(symbols), _char_class(invisible)
    between = _char_class(separators | invisible) + "*"
    group = rf"{sym}(?:{inv}*{sym}){{{GROUP_LEN - 1}}}"
    return (re.compile(rf"{group}(?:{between}{group}){{{GROUPS - 1},}}{inv}*"),
            re.compile(_char_class(several) + "|[\U00010000-\U0010FFFF]"))


def fold(text):
    """What `text` reads as, for finding codes and keys: symbols in upper case, separators "-", invisible NUL."""
    return str(text).translate(_table())


# --- tracking codes -------------------------------------------------------------------------------------

def _grouped(symbols):
    return SEP.join(symbols[i:i + GROUP_LEN] for i in range(0, len(symbols), GROUP_LEN))


def new_tracking_code():
    return _grouped("".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN)))


def _normalize(raw, pattern):
    raw = "" if raw is None else str(raw)
    if len(raw) > INPUT_MAX:
        return ""
    match = pattern.fullmatch(fold(raw).replace(INVISIBLE, "").strip(SEP))
    return SEP.join(match.groups()) if match else ""


def normalize_tracking_code(raw):
    """The stored form of what a resident typed ("k7m2 q9xr tp4d" -> "K7M2-Q9XR-TP4D"), or "" if it can't be one."""
    return _normalize(raw, _CODE)


# --- redaction ------------------------------------------------------------------------------------------

def secret_spans(text):
    """[(start, end)] of the tracking codes and confirmation keys written in `text`, however they are spelt."""
    text = str(text)
    in_text, several = _raw_patterns()
    if not several.search(text):  # every character reads as one (or none): match the text as it is
        return [m.span() for m in in_text.finditer(text)]
    origin, parts = [], []  # "ß" reads as "SS": fold, and map folded positions back to the text's
    table = _table()
    for i, ch in enumerate(text):
        part = table.get(ord(ch), ch)
        parts.append(part)
        origin.extend([i] * len(part))
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in _SECRET_IN_TEXT.finditer("".join(parts))]


def removed_marker(lang=None):
    """What stands in public text where a code was: in `lang` ("ru", "en"), else in the active language."""
    if lang:
        with translation.override(lang):
            return gettext("[tracking code removed]")
    return gettext("[tracking code removed]")


def redact(text, lang=None):
    """`text` for public output: every tracking code and confirmation key in it replaced by a marker.

    None and "" come back as they are. Used by every public output (the residents' pages and map popups, Open311
    JSON and XML, the CSV export): whatever a resident or staff member wrote.
    """
    if not text:
        return text
    text = str(text)
    spans = secret_spans(text)
    if not spans:
        return text
    marker, out, at = removed_marker(lang), [], 0
    for start, end in spans:
        out += [text[at:start], marker]
        at = end
    out.append(text[at:])
    return "".join(out)


# --- confirmation keys ----------------------------------------------------------------------------------

def new_confirmation_secret():
    """The random per-complaint secret that its confirmation key is derived from (32 hex digits, 128 bits)."""
    return secrets.token_hex(16)


def _key_from(secret, signing_key):
    digest = salted_hmac("complaints.confirmation_key", secret, secret=signing_key, algorithm="sha256").digest()
    number = int.from_bytes(digest[:12], "big")  # 96 bits, taken modulo 30^16 (about 2^78.5): no visible bias
    symbols = []
    for _ in range(KEY_GROUPS * GROUP_LEN):
        number, digit = divmod(number, len(ALPHABET))
        symbols.append(ALPHABET[digit])
    return _grouped("".join(symbols))


def confirmation_key(complaint):
    """The complaint's confirmation key, for its resident only (the tracking mail, the page after filing)."""
    return _key_from(complaint.confirmation_secret, settings.SECRET_KEY)


def confirmation_key_matches(complaint, raw):
    """Is `raw` (typed loosely) the complaint's confirmation key? Constant time; keys made under a SECRET_KEY now
    in SECRET_KEY_FALLBACKS still count."""
    typed = _normalize(raw, _KEY).encode()
    matched = False
    for signing_key in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        expected = _key_from(complaint.confirmation_secret, signing_key).encode()
        matched |= hmac.compare_digest(typed, expected)
    return matched and bool(typed)
