"""Imports committed from the upload page run on a real worker: the page queues the commit, shows its progress and
then its report; a worker killed in mid-import (held just before its COMMIT) loses nothing, and the next worker
imports it once; the commit's task run again imports nothing twice."""
import pytest
from django.contrib.auth.models import User
from django.test import Client

from facilities.models import AdminArea
from importers.core import PAUSE_ENV
from importers.models import ImportCommit, ImportRun
from importers.tasks import import_commit
from tests.admin.test_upload import UPLOAD, okrugs_file, run_url, spec_file

from .conftest import Worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def imports_dir(settings, tmp_path_factory):
    path = tmp_path_factory.mktemp("imports")
    settings.IMPORTS_DIR = str(path)  # this process (the page) and the workers below share it
    return path


@pytest.fixture
def start_import_worker(worker_env, imports_dir):
    started = []

    def start(**extra):
        env = {**worker_env["env"], "OURCITY_IMPORTS_DIR": str(imports_dir), **extra}
        w = Worker(env, worker_env["dir"] / f"import-worker-{len(started)}-{id(started)}.log")
        started.append(w)
        w.wait_ready()
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def clerk(demo_city):
    from facilities.models import Authority

    Authority.objects.get_or_create(code="mos", defaults={"name": "Правительство Москвы",
                                                          "short_name": "Правительство Москвы", "kind": "city"})
    user = User.objects.create_superuser("t-import-clerk", password="x")
    client = Client()
    client.force_login(user)
    return client


def dry_run(client):
    response = client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    assert response.status_code == 302
    dry = ImportRun.objects.latest("pk")
    assert dry.status == ImportRun.Status.DRY_RUN, dry.error
    return dry


def okrugs():
    return AdminArea.objects.active().filter(dataset__code="t-upload-okrugs").count()


def test_the_upload_page_commit_runs_on_the_worker_and_shows_progress_then_report(start_import_worker, clerk):
    start_import_worker()
    dry = dry_run(clerk)
    assert okrugs() == 0
    queued = clerk.post(run_url("commit", dry), follow=True)
    assert queued.status_code == 200 and queued.context["job"] is not None  # answered before the import ran
    wait_until(lambda: ImportCommit.objects.get(dry_run=dry).state == ImportCommit.State.DONE, seconds=90,
               what="the worker to commit the import")
    progress = clerk.get(run_url("progress", dry)).json()
    run = ImportRun.objects.get(pk=progress["run"])
    assert progress["state"] == "done" and (progress["rows_read"], progress["rows_loaded"]) == (12, 12)
    assert run.status == ImportRun.Status.COMMITTED and run.counts["created"] == 12 and okrugs() == 12
    page = clerk.get(run_url("report", dry)).content.decode()
    assert run_url("report", run) in page and '<meta http-equiv="refresh"' not in page
    report = clerk.get(run_url("report", run))
    assert report.status_code == 200 and report.context["run"].counts["created"] == 12
    assert import_commit.delay(ImportCommit.objects.get(dry_run=dry).pk).get(timeout=60) == "done"  # again: once
    assert ImportRun.objects.filter(commit=True, dataset_code="t-upload-okrugs").count() == 1


def test_a_worker_killed_mid_import_loses_nothing_and_the_next_imports_once(start_import_worker, clerk):
    first = start_import_worker(**{PAUSE_ENV: "60"})  # holds the import's transaction open just before COMMIT
    dry = dry_run(clerk)
    clerk.post(run_url("commit", dry))
    job = ImportCommit.objects.get(dry_run=dry)
    wait_until(lambda: "paused before commit" in first.log.read_text(errors="replace"), seconds=90,
               what="the first worker to be in mid-import")
    first.kill()
    job.refresh_from_db()
    assert job.state == ImportCommit.State.RUNNING and job.attempts == 1 and okrugs() == 0
    killed_run = job.run
    assert killed_run is not None and killed_run.status == ImportRun.Status.RUNNING

    start_import_worker()
    wait_until(lambda: ImportCommit.objects.get(pk=job.pk).state == ImportCommit.State.DONE, seconds=120,
               what="the next worker to run the commit again")
    job.refresh_from_db()
    assert job.attempts == 2 and job.run_id != killed_run.pk
    assert ImportRun.objects.get(pk=killed_run.pk).status == ImportRun.Status.ABORTED
    commits = ImportRun.objects.filter(commit=True, dataset_code="t-upload-okrugs")
    assert [r.status for r in commits].count(ImportRun.Status.COMMITTED) == 1
    assert okrugs() == 12 and job.run.counts["created"] == 12
