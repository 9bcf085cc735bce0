"""The hand-on figures as people read them (the public statistics, the staff workspace, their CSV files): names
for the keys of complaints.handons.handon_rates, the tables the pages show, and the CSV lines. The figures and
their definitions belong to complaints.handons (handon_rates); this module only presents them."""
import csv

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from complaints.handons import HANDON_DIMENSIONS
from facilities.models import AdminArea, Department, FacilityType
from routing.models import Category
from staff.export import csv_cell

from .labels import localized

DIMENSION_LABELS = {
    "department": gettext_lazy("By the department first routed to"),
    "category": gettext_lazy("By category"),
    "facility_type": gettext_lazy("By facility type"),
    "district": gettext_lazy("By district"),
}
NONE_LABELS = {
    "department": gettext_lazy("(no department)"),
    "category": gettext_lazy("(no category)"),
    "facility_type": gettext_lazy("no facility (decided by the area or the category)"),
    "district": gettext_lazy("outside any district"),
}


def handon_names(rows):
    """{(dimension, key): name} for the rows' keys, in the active language."""
    keys = {d: {r.key for r in rows if r.dimension == d and r.key is not None} for d in HANDON_DIMENSIONS}
    names = {}
    for pk, dep in Department.objects.select_related("authority").in_bulk(keys["department"]).items():
        names["department", pk] = dep.display_name
    for pk, cat in Category.objects.in_bulk(keys["category"]).items():
        names["category", pk] = localized(cat, "name")
    for pk, ftype in FacilityType.objects.in_bulk(keys["facility_type"]).items():
        names["facility_type", pk] = localized(ftype, "name")
    for pk, area in AdminArea.objects.only("id", "name").in_bulk(keys["district"]).items():
        names["district", pk] = area.name
    return names


def _name(names, row):
    if row.dimension is None:
        return _("All complaints")
    if row.key is None:
        return str(NONE_LABELS[row.dimension])
    return names.get((row.dimension, row.key), f"#{row.key}")


def _pct(value):
    return None if value is None else round(100 * value, 1)


def handon_tables(rows):
    """What a page shows: `overall` (the whole period), `months` (all complaints, by month, newest first) and
    `tables` (per dimension over the whole period, most complaints first), each line a dict with its name, the
    counts and both rates in per cent."""
    names = handon_names(rows)

    def line(r):
        return {"name": _name(names, r), "month": r.month, "complaints": r.complaints, "forwarded": r.forwarded,
                "forwarding_pct": _pct(r.forwarding_rate), "resolved": r.resolved, "first_contact": r.first_contact,
                "first_contact_pct": _pct(r.first_contact_rate)}

    overall = next((line(r) for r in rows if r.dimension is None and r.month is None), None)
    months = sorted((line(r) for r in rows if r.dimension is None and r.month is not None),
                    key=lambda x: x["month"], reverse=True)
    tables = [{"dimension": d, "label": DIMENSION_LABELS[d],
               "rows": sorted((line(r) for r in rows if r.dimension == d and r.month is None),
                              key=lambda x: (-x["complaints"], x["name"]))} for d in HANDON_DIMENSIONS]
    return {"overall": overall, "months": months, "tables": tables}


class _Echo:
    def write(self, value):
        return value


def handon_csv_rows(rows):
    """Lines of CSV text (UTF-8 with a BOM for spreadsheets), every line of the figures: the breakdown, its key's
    name, the month (empty: the whole period), the counts and both rates in per cent. Every cell is made safe from
    CSV injection (staff.export.csv_cell): the names come from imported data."""
    names = handon_names(rows)
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([
        _("Breakdown"), _("Name"), _("Month"), _("Complaints"), _("Handed on"), _("Forwarding rate, %"),
        _("Resolved"), _("Resolved at first contact"), _("First-contact resolution, %")])
    for r in rows:
        yield writer.writerow([csv_cell(v) for v in (
            r.dimension or "all", _name(names, r), r.month.strftime("%Y-%m") if r.month else "", r.complaints,
            r.forwarded, _pct(r.forwarding_rate), r.resolved, r.first_contact, _pct(r.first_contact_rate))])
