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


# --- big exports, on the task queue -----------------------------------------------------------------------
# A list longer than settings.EXPORT_QUEUE_ROWS is not streamed in the request: an ExportJob is queued, a worker
# writes the file with the asker's own scoping (staff.selectors.tickets_filtered, from their departments as they
# are when it runs) through the storage API (default_storage), and the workspace's "Exports" page offers it to the
# asker only. Kept EXPORT_KEEP_HOURS hours.

def export_request(*, user, query, language, base_url):
    """Queue a big export of the ticket list `query` (its query string) for `user`: one ExportJob, its task
    sent once this commits."""
    from django.db import transaction

    from .models import ExportJob
    from .tasks import export_make

    with transaction.atomic():
        job = ExportJob.objects.create(user=user, filters=query, language=language, base_url=base_url[:300])
        transaction.on_commit(lambda: export_make.delay(job.pk), robust=True)
    return job


def export_storage_name(job):
    return f"exports/{job.pk}/tickets-{timezone.localtime(job.created_at):%Y%m%d-%H%M}.csv"


def export_write(job):
    """Write the file of `job` (an ExportJob taken by the caller under its row lock); return (name, rows)."""
    import tempfile

    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.http import QueryDict
    from django.urls import reverse
    from django.utils import translation

    from . import selectors
    from .forms import TicketFilterForm

    with translation.override(job.language):
        filters = TicketFilterForm(QueryDict(job.filters)).filters()
        tickets = selectors.tickets_filtered(job.user, **filters).select_related("department__authority", "category")
        rows = 0
        with tempfile.TemporaryFile() as fh:
            for line in ticket_csv_rows(tickets, lambda pk: f"{job.base_url}{reverse('staff:ticket', args=[pk])}"):
                fh.write(line.encode("utf-8"))
                rows += 1
            fh.seek(0)
            name = export_storage_name(job)
            if default_storage.exists(name):  # an attempt that died after writing it
                default_storage.delete(name)
            name = default_storage.save(name, File(fh, name=name.rsplit("/", 1)[-1]))
    return name, rows - 1
