"""Photos and import files through Django's storage API into an S3-compatible store (OURCITY_STORAGE=s3): a real
HTTP S3 server (moto's, a subprocess), so what every app server and worker shares is the bucket, not a disk."""
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from complaints.models import Complaint, State
from geo_ourcity.env import storages_config
from importers.models import ImportCommit, ImportRun
from tests import s3server
from tests.admin.test_upload import city  # noqa: F401 (a fixture)
from tests.admin.test_upload import UPLOAD, commit, okrugs_file, run_url, spec_file
from tests.open311.conftest import form, make_service
from tests.web.conftest import TVERSKAYA

from .conftest import local_files

pytestmark = pytest.mark.django_db


def image(fmt="JPEG"):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 60)).save(buffer, format=fmt)
    return SimpleUploadedFile(f"p.{fmt.lower()}", buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def stored_object(s3_endpoint, bucket, key):
    return s3server.client(s3_endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()


def assert_private(s3_endpoint, bucket, key):
    """Only the bucket owner may read it: no grant to everyone or to every AWS user."""
    grants = s3server.client(s3_endpoint).get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all(g["Grantee"]["Type"] == "CanonicalUser" for g in grants)


def report_from_the_map(client):
    data = {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1], "category": "yard-rubbish", "description": "Мусор во дворе",
            "photo": image("PNG")}
    response = client.post("/report/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    return Complaint.objects.get(tracking_code=response.json()["tracking_code"])


def post_to_open311(client):
    from open311.keys import api_key_issue

    make_service()
    key = api_key_issue(name="s3-integrator")[1]
    response = client.post("/open311/v2/requests.json", form(key, media=image("JPEG")))
    assert response.status_code == 201, response.content
    return Complaint.objects.get(pk=response.json()[0]["service_request_id"])


@pytest.mark.parametrize("intake", [report_from_the_map, post_to_open311], ids=["report form", "open311 media"])
def test_a_photo_is_kept_in_the_bucket_and_served_from_it(client, bucket, s3_endpoint, tmp_path, intake):
    complaint = intake(client)
    photo = complaint.photos.get()
    key = f"media/{photo.file.name}"
    assert s3server.keys(s3_endpoint, bucket) == [key] and photo.file.name.startswith("photos/")
    assert local_files(tmp_path / "media") == []  # nothing on this machine's disk
    assert_private(s3_endpoint, bucket, key)
    served = client.get(reverse("complaints:photo", args=[photo.pk]))
    assert served.status_code == 200 and served["Content-Type"] == photo.content_type
    assert b"".join(served.streaming_content) == stored_object(s3_endpoint, bucket, key)
    # the access rules stay: a hidden complaint's photo is not served, nor one whose object is gone
    Complaint.objects.filter(pk=complaint.pk).update(state=State.HIDDEN)
    assert client.get(reverse("complaints:photo", args=[photo.pk])).status_code == 404
    Complaint.objects.filter(pk=complaint.pk).update(state=State.ASSIGNED)
    s3server.client(s3_endpoint).delete_object(Bucket=bucket, Key=key)
    assert client.get(reverse("complaints:photo", args=[photo.pk])).status_code == 404


def test_an_import_upload_is_kept_in_the_bucket_and_committed_from_it(admin_client, city, bucket, s3_endpoint,  # noqa: F811
                                                                      tmp_path):
    response = admin_client.post(UPLOAD, {"file": okrugs_file("Округа Москвы.geojson"), "spec_file": spec_file()})
    assert response.status_code == 302, response.context and response.context["form"].errors
    dry = ImportRun.objects.latest("pk")
    assert dry.status == ImportRun.Status.DRY_RUN
    spec_sha = hashlib.sha256(spec_file().read()).hexdigest()
    assert s3server.keys(s3_endpoint, bucket) == sorted([
        f"imports/{runs_folder()}/run-{dry.pk}/rejects.csv", f"imports/{runs_folder()}/run-{dry.pk}/report.txt",
        f"imports/uploads/{dry.file_sha256}/Округа_Москвы.geojson", f"imports/uploads/{spec_sha}/okrugs.yaml"])
    dataset_key = f"imports/uploads/{dry.file_sha256}/Округа_Москвы.geojson"
    assert stored_object(s3_endpoint, bucket, dataset_key) == okrugs_file().read()
    for key in s3server.keys(s3_endpoint, bucket):
        assert_private(s3_endpoint, bucket, key)
    imports = Path(settings.IMPORTS_DIR)
    assert local_files(imports) == [] and list((imports / "tmp").iterdir()) == []  # local copies removed

    page = admin_client.get(run_url("report", dry))  # the report and the rejects, read from the bucket
    assert page.status_code == 200 and page.context["can_commit"]
    assert page.context["report_text"] == stored_object(s3_endpoint, bucket, f"imports/{runs_folder()}/run-{dry.pk}/report.txt"
                                                        ).decode()
    assert f"Import run #{dry.pk} [DRY RUN]" in page.context["report_text"]

    commit(admin_client, dry)  # the dataset read back from the bucket, by the queued commit's task
    run = ImportRun.objects.latest("pk")
    assert run.pk != dry.pk and run.status == ImportRun.Status.COMMITTED and run.file_sha256 == dry.file_sha256
    download = admin_client.get(run_url("download", run, "report"))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == stored_object(s3_endpoint, bucket,
                                                                 f"imports/{runs_folder()}/run-{run.pk}/report.txt")
    assert local_files(imports) == [] and list((imports / "tmp").iterdir()) == []


def test_a_changed_or_missing_upload_in_the_bucket_is_not_committed(admin_client, city, bucket, s3_endpoint):  # noqa: F811
    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    dry = ImportRun.objects.latest("pk")
    key = f"imports/uploads/{dry.file_sha256}/ao.geojson"
    s3 = s3server.client(s3_endpoint)
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"type": "FeatureCollection", "features": []}')
    response = commit(admin_client, dry)  # the worker checks the hash again
    assert response.context["job"].state == ImportCommit.State.FAILED
    changed = ("has changed since the dry run", "изменился после пробного прогона")  # in the site's language
    assert any(text in response.context["progress"]["error"] for text in changed)
    s3.delete_object(Bucket=bucket, Key=key)
    ImportCommit.objects.filter(dry_run=dry).delete()  # the failed commit's record: the page would show it
    assert not admin_client.get(run_url("report", dry)).context["can_commit"]
    assert not ImportRun.objects.filter(pk__gt=dry.pk, status=ImportRun.Status.COMMITTED).exists()


S3 = {"OURCITY_STORAGE": "s3", "OURCITY_S3_BUCKET": "b"}


@pytest.mark.parametrize("environ, named", [
    ({"OURCITY_STORAGE": "ftp"}, "OURCITY_STORAGE"),
    ({"OURCITY_STORAGE": "s3"}, "OURCITY_S3_BUCKET"),
    ({**S3, "OURCITY_S3_ENDPOINT_URL": "file:///etc"}, "OURCITY_S3_ENDPOINT_URL"),
    ({**S3, "OURCITY_S3_ENDPOINT_URL": "localhost:9000"}, "OURCITY_S3_ENDPOINT_URL"),
    ({**S3, "OURCITY_S3_MEDIA_PREFIX": "../imports"}, "OURCITY_S3_MEDIA_PREFIX"),
    ({**S3, "OURCITY_S3_IMPORTS_PREFIX": "a/../../b"}, "OURCITY_S3_IMPORTS_PREFIX"),
    ({**S3, "OURCITY_S3_IMPORTS_PREFIX": "/"}, "OURCITY_S3_IMPORTS_PREFIX"),
])
def test_a_bad_storage_setting_stops_the_start_with_one_line(environ, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        storages_config(environ)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OURCITY_S")}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, capture_output=True,
                          text=True, env={**env, **environ}, timeout=120)
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and named in done.stderr


def test_private_by_default_and_the_filesystem_without_configuration():
    assert storages_config({})["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    options = storages_config({**S3})["default"]["OPTIONS"]
    assert options["default_acl"] is None and options["querystring_auth"] and not options["file_overwrite"]


def runs_folder():
    """The folder of this database's run reports in the imports storage (importers.core.runs_dir)."""
    from importers.core import runs_dir

    return runs_dir().name
