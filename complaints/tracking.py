"""Public tracking codes: short, read aloud and typed without ambiguity, and not guessable."""
import re
import secrets

# Crockford's base32 without 0 and 1 (no I, L, O, U either): nothing to confuse when typed or read out.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS, GROUP_LEN = 3, 4  # 12 symbols: about 59 bits from `secrets`, e.g. "K7M2-Q9XR-TP4D"


def new_tracking_code():
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN))
    return "-".join(symbols[i:i + GROUP_LEN] for i in range(0, len(symbols), GROUP_LEN))


def normalize_tracking_code(raw):
    """The stored form of what a resident typed ("k7m2 q9xr tp4d" -> "K7M2-Q9XR-TP4D"), or "" if it can't be one."""
    symbols = re.sub(r"[\s\-_.]", "", str(raw or "")).upper()
    if len(symbols) != GROUPS * GROUP_LEN or any(ch not in ALPHABET for ch in symbols):
        return ""
    return "-".join(symbols[i:i + GROUP_LEN] for i in range(0, len(symbols), GROUP_LEN))
