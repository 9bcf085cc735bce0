"""Big staff CSV exports run on a real worker: past EXPORT_QUEUE_ROWS the list is queued, not streamed; the worker
writes it through the storage API with the asker's own department scoping; the file goes to the asker only; a
short list still streams at once; the hourly sweep deletes old files."""
import datetime

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from staff.models import ExportJob
from staff.tasks import export_expire
from tests.staff.conftest import (categories, client_for, departments, districts, make_ticket,  # noqa: F401
                                  staff)

from .conftest import Worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
CSV = "/staff/tickets.csv"


@pytest.fixture
def media_root(settings, tmp_path_factory):
    path = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = str(path)
    return path


@pytest.fixture
def export_worker(worker_env, media_root):
    w = Worker({**worker_env["env"], "MEDIA_ROOT": str(media_root)}, worker_env["dir"] / f"export-{id(media_root)}.log")
    w.wait_ready()
    yield w
    w.stop()


@pytest.fixture
def tickets(demo_city, make_ticket, departments):  # noqa: F811
    mine = [make_ticket() for _ in range(5)]
    theirs = make_ticket(department=departments["b"])
    return mine, theirs


def downloaded(response):
    return b"".join(response.streaming_content).decode("utf-8-sig").splitlines()


def test_a_big_export_is_made_by_the_worker_for_the_asker_only(export_worker, tickets, staff, client_for,  # noqa: F811
                                                               settings, media_root):
    mine, theirs = tickets
    settings.EXPORT_QUEUE_ROWS = 3
    asker = client_for(staff["a"])
    response = asker.get(CSV, {"state": "all"})
    assert response.status_code == 302 and response.url == "/staff/exports/"  # queued, not streamed
    job = ExportJob.objects.get()
    wait_until(lambda: ExportJob.objects.get(pk=job.pk).state == "done", what="the worker to make the export")
    job.refresh_from_db()
    assert job.rows == 5 and default_storage.exists(job.file) and (media_root / job.file).is_file()
    page = asker.get("/staff/exports/").content.decode()
    url = f"/staff/exports/{job.pk}/download/"
    assert url in page
    rows = downloaded(asker.get(url))
    numbers = sorted(int(r.split(",")[0]) for r in rows[1:])
    assert numbers == sorted(t.pk for t in mine) and theirs.pk not in numbers  # the asker's department only
    assert f"/staff/t/{mine[0].pk}/" in "\n".join(rows)

    for other in ("b", "dispatcher", "data"):  # anyone else: as if it did not exist
        client = client_for(staff[other])
        assert client.get(url).status_code == 404, other
        assert url not in client.get("/staff/exports/").content.decode()
    from django.test import Client

    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.url

    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - datetime.timedelta(hours=25))
    assert export_expire.delay().get(timeout=60) == 1
    assert not default_storage.exists(job.file) and asker.get(url).status_code == 404


def test_a_short_export_still_streams_at_once(tickets, staff, client_for, settings):  # noqa: F811
    settings.EXPORT_QUEUE_ROWS = 100
    response = client_for(staff["a"]).get(CSV, {"state": "all"})
    assert response.status_code == 200 and len(downloaded(response)) == 6 and not ExportJob.objects.exists()
