"""CSV export of a ticket list: streamed, UTF-8 with a BOM (spreadsheets then read Cyrillic right), and safe
from CSV injection. No resident contact data: the list is for planning work, not for contacting people."""
import csv

from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.tracking import redact
from web.labels import localized, state_label

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _when(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


class _Echo:
    def write(self, value):
        return value


def ticket_csv_rows(tickets, ticket_url):
    """Lines of CSV text for the tickets (a QuerySet from staff.selectors.tickets_filtered)."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([
        _("Number"), _("Submitted"), _("Deadline"), _("Overdue"), _("State"), _("Category"), _("District"),
        _("Department"), _("Address"), _("Description"), _("Answered"), _("Link")])
    for t in tickets.iterator(chunk_size=2000):
        yield writer.writerow([csv_cell(v) for v in (
            t.pk, _when(t.submitted_at), _when(t.deadline), _("yes") if t.is_overdue else "",
            state_label(t.state), localized(t.category, "name"), t.district_name or "",
            # A CSV leaves the workspace (files, mail): free text without tracking codes or keys.
            t.department.display_name, redact(t.address_string), redact(t.description), _when(t.answered_at),
            ticket_url(t.pk))])
