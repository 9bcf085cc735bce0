"""What a value must be for the registry to store it, read from the models' fields (never copied here).

A dry run runs every check a commit's INSERTs would meet: a value longer than its column, a value that is not one
of the field's choices, a NUL character (PostgreSQL text holds none). A row that fails one is a rejected row
with its reason, in a dry run and in a commit alike, instead of a commit that aborts on it.

Fields are named "app.Model.field". The models are looked up through the app registry: importers writes these
tables with SQL (load.py), and reads only their rules from here.
"""
from functools import cache

import numpy as np
from django.apps import apps

# The field each target's row key is stored in (holidays are keyed by their date and store no key).
SOURCE_KEY_FIELDS = {
    "areas": "facilities.AdminArea.source_key",
    "authorities": "facilities.Authority.source_key",
    "facilities": "facilities.Facility.source_key",
    "categories": "routing.Category.source_key",
    "assignments": "routing.RoutingAssignment.source_key",
    "holidays": None,
    "working_weeks": None,  # keyed by the year
    "addresses": "facilities.Address.source_key",
}


# Process-local memo: model fields, which never change while the process lives.
@cache
def model_field(label):
    app_label, model_name, field_name = label.split(".")
    return apps.get_model(app_label, model_name)._meta.get_field(field_name)


def max_length(label):
    return model_field(label).max_length


def choices(label):
    """The values a field with choices accepts, in their declared order (None: any value)."""
    field = model_field(label)
    return [str(value) for value, _ in field.flatchoices] if field.choices else None


def too_long(label, text):
    """A reason if `text` does not fit the field's column, else None."""
    limit = max_length(label)
    if "\x00" in text:
        return "holds a NUL character, which the database can not store"
    if limit is not None and len(text) > limit:
        return f"is {len(text)} characters long; its column holds {limit}"
    return None


def reject_unstorable(rej, columns, fields):
    """Reject the rows whose value in `columns[name]` the field `fields[name]` can not store.

    Checks, per field: a NUL character, the length (max_length) and the choices. Values are strings ('' for
    none), as prepare.py builds them."""
    for name, label in fields.items():
        texts = ["" if v is None else str(v) for v in columns[name]]
        field = model_field(label)
        rej.reject(np.array(["\x00" in t for t in texts], dtype=bool),
                   f"{name} holds a NUL character, which the database can not store")
        if field.max_length is not None:
            lengths = np.array([len(t) for t in texts], dtype=np.int64)
            rej.reject(lengths > field.max_length,
                       lambda i, n=name, f=field, ln=lengths: f"{n} is {ln[i]} characters long; its column holds "
                                                             f"{f.max_length}")
        allowed = choices(label)
        if allowed is not None:
            rej.reject(np.array([t not in allowed for t in texts], dtype=bool),
                       lambda i, n=name, a=allowed, t=texts: f"{n} {t[i]!r} is not one of {', '.join(a)}")
