"""The data-staff upload page: dry run, then commit of the same stored file; bad input changes nothing.

The page queues the commit (importers.tasks.import_commit); these tests run in one transaction, so nothing reaches
the queue, and `commit` below runs the queued commit's task body here, as a worker would. tests/queue runs it on a
real worker."""
import io
import json
import zipfile
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.messages import ERROR, SUCCESS
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from facilities.models import AdminArea, Authority, Facility
from importers.models import ImportCommit, ImportRun
from importers.prepare import TRANSLATED_MAX
from importers.tasks import import_commit
from routing.models import Category
from tests.osm_extract import helsinki_pbf

pytestmark = pytest.mark.django_db

DATA = Path(settings.BASE_DIR) / "data"
OKRUGS = DATA / "moscow" / "ao.geojson"
UPLOAD = reverse("admin:importers_importrun_upload")


def run_url(name, run, *args):
    return reverse(f"admin:importers_importrun_{name}", args=[run.pk, *args])


@pytest.fixture
def city(db):
    """The city government, the parent of the okrug prefectures (moscow_okrugs.yaml: parent_code mos)."""
    Authority.objects.get_or_create(code="mos", defaults={"name": "Правительство Москвы",
                                                          "short_name": "Правительство Москвы", "kind": "city"})


def okrugs_file(name="ao.geojson"):
    return SimpleUploadedFile(name, OKRUGS.read_bytes(), content_type="application/geo+json")


def spec_file(parent_code="mos"):
    """moscow_okrugs.yaml under another dataset code, so its commit creates okrugs on any database."""
    spec = yaml.safe_load((DATA / "specs" / "moscow_okrugs.yaml").read_text(encoding="utf-8"))
    spec["dataset"] = "t-upload-okrugs"
    spec["jurisdiction"]["code"] = "t-upload-prefecture-{OKATO}"
    spec["jurisdiction"]["parent_code"] = parent_code
    return SimpleUploadedFile("okrugs.yaml", yaml.safe_dump(spec, allow_unicode=True).encode())


def commit(client, run):
    """Post the page's commit, run the queued commit as a worker would, and return the run's page after it."""
    queued = client.post(run_url("commit", run), follow=True)
    job = ImportCommit.objects.filter(dry_run=run).first()
    if job is None:
        return queued
    assert job.state == ImportCommit.State.QUEUED and SUCCESS in levels(queued)
    import_commit(job.pk)
    return client.get(run_url("report", run))


def levels(response):
    return [m.level for m in response.context["messages"]]


def test_upload_page_offers_the_repository_specs(admin_client):
    page = admin_client.get(UPLOAD)
    assert page.status_code == 200
    assert ("moscow_okrugs.yaml", "moscow_okrugs.yaml") in page.context["form"].fields["spec_name"].choices


def test_dry_run_changes_nothing_then_commit_applies_it(admin_client, admin_user, city, imports_dir):
    areas = AdminArea.objects.count()
    response = admin_client.post(UPLOAD, {"file": okrugs_file("Округа Москвы.geojson"),
                                          "spec_name": "moscow_okrugs.yaml"})
    assert response.status_code == 302, response.context and response.context["form"].errors
    dry = ImportRun.objects.latest("pk")
    assert (dry.status, dry.commit, dry.user, dry.file_name) == (ImportRun.Status.DRY_RUN, False, admin_user,
                                                                 "Округа Москвы.geojson")
    assert response.url == run_url("report", dry)
    assert AdminArea.objects.count() == areas
    stored = imports_dir / "uploads" / dry.file_sha256 / "Округа_Москвы.geojson"
    assert stored.read_bytes() == OKRUGS.read_bytes()

    report = admin_client.get(response.url)
    assert report.status_code == 200
    assert run_url("commit", dry) in report.content.decode()  # the "Commit this import" form
    assert report.context["counts"][0][1] == 12  # read

    committed = commit(admin_client, dry)
    run = ImportRun.objects.latest("pk")
    assert run.pk != dry.pk and run.commit and run.file_sha256 == dry.file_sha256 and run.spec == dry.spec
    assert run.status in (ImportRun.Status.COMMITTED, ImportRun.Status.NO_CHANGE)  # the demo city may be loaded
    assert committed.context["progress"]["run"] == run.pk  # the dry run's page links the commit's report
    assert run_url("report", run) in committed.content.decode()
    assert run_url("commit", dry) not in committed.content.decode()
    assert run_url("commit", run) not in admin_client.get(run_url("report", run)).content.decode()
    okrugs = AdminArea.objects.active().filter(dataset__code="moscow-okrugs", level="okrug")
    assert okrugs.count() == 12
    assert run.counts["created"] + run.counts["unchanged"] == 12


def test_commit_of_an_uploaded_spec_creates_12_okrugs(admin_client, city, imports_dir):
    areas = AdminArea.objects.count()
    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    dry = ImportRun.objects.latest("pk")
    assert dry.status == ImportRun.Status.DRY_RUN and dry.counts["created"] == 12
    assert AdminArea.objects.count() == areas

    commit(admin_client, dry)
    run = ImportRun.objects.latest("pk")
    assert run.status == ImportRun.Status.COMMITTED and run.counts["created"] == 12
    assert AdminArea.objects.count() == areas + 12
    assert AdminArea.objects.filter(dataset__code="t-upload-okrugs", level="okrug").count() == 12


def test_rejects_are_shown_and_downloadable(admin_client, city, imports_dir):
    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file(parent_code="t-no-such")})
    run = ImportRun.objects.latest("pk")
    assert run.counts["rejected"] == 12
    report = admin_client.get(run_url("report", run))
    assert len(report.context["rejects"]) == 12
    assert "t-no-such" in report.content.decode()
    download = admin_client.get(run_url("download", run, "rejects"))
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines[0] == "row,key,reason" and len(lines) == 13
    assert admin_client.get(run_url("download", run, "report")).status_code == 200


def test_bad_file_is_an_error_message_and_changes_nothing(admin_client, city, imports_dir):
    areas = AdminArea.objects.count()
    bad = SimpleUploadedFile("okrugs.geojson", b"this is not GeoJSON\n")
    response = admin_client.post(UPLOAD, {"file": bad, "spec_name": "moscow_okrugs.yaml"})
    assert response.status_code == 200
    assert ERROR in levels(response)
    assert AdminArea.objects.count() == areas
    assert ImportRun.objects.latest("pk").status == ImportRun.Status.FAILED


def test_bad_spec_is_an_error_message(admin_client, imports_dir):
    bad = SimpleUploadedFile("spec.yaml", b"dataset: x\ntarget: nothing\n")
    response = admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": bad})
    assert response.status_code == 200 and ERROR in levels(response)


def a_spec(name="spec.yaml"):
    return SimpleUploadedFile(name, b"a: 1")


@pytest.mark.parametrize("data, field", [
    (lambda: {"file": SimpleUploadedFile("okrugs.txt", b"x"), "spec_name": "moscow_okrugs.yaml"}, "file"),
    (lambda: {"file": okrugs_file()}, "__all__"),
    (lambda: {"file": okrugs_file(), "spec_name": "moscow_okrugs.yaml", "spec_file": a_spec()}, "__all__"),
    (lambda: {"file": okrugs_file(), "spec_name": "../../geo_ourcity/settings.py"}, "spec_name"),
    (lambda: {"file": okrugs_file(), "spec_file": a_spec("spec.txt")}, "spec_file"),
], ids=["extension", "no spec", "two specs", "spec outside data/specs", "spec extension"])
def test_form_errors(admin_client, imports_dir, data, field):
    runs = ImportRun.objects.count()
    response = admin_client.post(UPLOAD, data())
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert ImportRun.objects.count() == runs


def test_oversize_file_is_refused(admin_client, imports_dir, settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = 1000
    runs = ImportRun.objects.count()
    response = admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_name": "moscow_okrugs.yaml"})
    assert response.status_code == 200
    assert "file" in response.context["form"].errors
    assert ImportRun.objects.count() == runs
    assert not (imports_dir / "uploads").exists()


def test_commit_refuses_a_changed_stored_file(admin_client, city, imports_dir):
    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    dry = ImportRun.objects.latest("pk")
    stored = imports_dir / "uploads" / dry.file_sha256 / "ao.geojson"
    stored.write_bytes(stored.read_bytes().replace(b"\xd0\xa2", b"T", 1))
    areas = AdminArea.objects.count()
    response = commit(admin_client, dry)  # the worker checks the hash again (too slow for the request)
    assert response.context["job"].state == ImportCommit.State.FAILED
    changed = ("has changed since the dry run", "изменился после пробного прогона")  # in the site's language
    assert any(text in response.context["progress"]["error"] for text in changed)
    assert any(text in response.content.decode() for text in changed)
    assert ImportRun.objects.latest("pk").pk == dry.pk
    assert AdminArea.objects.count() == areas


def test_only_a_dry_run_can_be_committed_and_only_by_post(admin_client, city, imports_dir):
    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    dry = ImportRun.objects.latest("pk")
    assert admin_client.get(run_url("commit", dry)).status_code == 405
    commit(admin_client, dry)
    committed = ImportRun.objects.latest("pk")
    response = admin_client.post(run_url("commit", committed), follow=True)
    assert ERROR in levels(response) and not ImportCommit.objects.filter(dry_run=committed).exists()
    assert ImportRun.objects.latest("pk").pk == committed.pk
    again = admin_client.post(run_url("commit", dry), follow=True)  # the same dry run again: the same commit
    assert ImportCommit.objects.filter(dry_run=dry).count() == 1 and again.status_code == 200
    assert ImportRun.objects.latest("pk").pk == committed.pk


def test_downloads_are_only_files_of_runs(admin_client, imports_dir, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    run = ImportRun.objects.create(dataset_code="t", actor="t", file_name="x", file_sha256="", spec={},
                                   report_path=str(outside), rejects_path=str(imports_dir / ".." / "secret.txt"))
    assert admin_client.get(run_url("download", run, "report")).status_code == 404
    assert admin_client.get(run_url("download", run, "rejects")).status_code == 404
    assert admin_client.get(run_url("download", run, "spec")).status_code == 404
    assert admin_client.get(reverse("admin:importers_importrun_download", args=[10**9, "report"])).status_code == 404


def test_permission_is_required(client, admin_client, city, imports_dir):
    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    dry = ImportRun.objects.latest("pk")
    pages = [UPLOAD, run_url("report", dry), run_url("download", dry, "report"), run_url("progress", dry)]

    for page in pages + [run_url("commit", dry)]:  # not logged in: the admin login page
        response = client.post(page) if page.endswith("/commit/") else client.get(page)
        assert response.status_code == 302 and reverse("admin:login") in response.url

    client.force_login(User.objects.create_user("t-staff", password="x", is_staff=True))
    for page in pages:
        assert client.get(page).status_code in (403, 404) if page.endswith("/progress/") else 403
    assert client.post(UPLOAD, {"file": okrugs_file(), "spec_name": "moscow_okrugs.yaml"}).status_code == 403
    assert client.post(run_url("commit", dry)).status_code == 403
    assert ImportRun.objects.latest("pk").pk == dry.pk
    changelist = client.get(reverse("admin:importers_importrun_changelist"))
    assert changelist.status_code == 403


# ---- hostile uploads: the page refuses them with one line, names them as uploaded, shows no server path -------

LIGHTS_SPEC = {"dataset": "t-upload-lights", "target": "facilities", "key": "id", "type": "streetlight",
               "types": {"streetlight": {"ru": "Фонарь", "en": "Street light"}}, "owner": "mos", "name": "name",
               "source": {"crs": "EPSG:4326"}}
SECRET = "TOP-SECRET-upload-91c2"


def uploaded_spec(spec):
    return SimpleUploadedFile("мой spec.yaml", yaml.safe_dump(spec, allow_unicode=True).encode())


def lights(name="Lamp"):
    return json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "id": "1", "name": name}, "geometry": {"type": "Point", "coordinates": [37.593, 55.7494]}}]})


def zipped(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def server_secret(tmp_path):
    path = tmp_path / "server-secret.csv"
    path.write_text(f"id,name,lon,lat\ns1,{SECRET},37.593,55.7494\n", encoding="utf-8")
    return path


def vrt(secret):
    return (f'<OGRVRTDataSource><OGRVRTLayer name="server-secret"><SrcDataSource>{secret}</SrcDataSource>'
            '<GeometryType>wkbPoint</GeometryType><GeometryField encoding="PointFromColumns" x="lon" y="lat"/>'
            '</OGRVRTLayer></OGRVRTDataSource>').encode()


HOSTILE = {
    "OGR VRT named .geojson": ("Фонари.geojson", lambda s: vrt(s), "GeoJSON"),
    "OGR VRT inside a zip": ("Фонари.zip", lambda s: zipped({"lights.geojson": vrt(s)}), "GeoJSON"),
    "zip bomb": ("Фонари.zip", lambda s: zipped({"lights.geojson": lights().encode() + b" " * (3 << 20)}), "times"),
    "nested zip": ("Фонари.zip", lambda s: zipped({"lights.geojson": lights(), "more.zip": zipped({"a": "b"})}),
                   "nested"),
    "member outside the folder": ("Фонари.zip", lambda s: zipped({"../../lights.geojson": lights()}), "'..'"),
    "zip named .kml": ("Фонари.kml", lambda s: zipped({"doc.kml": "<kml/>"}), "archive"),
    "OGR VRT named .osm.pbf": ("Фонари.osm.pbf", lambda s: vrt(s), "not a readable OSM PBF"),
    "OSM extract named .geojson": ("Фонари.geojson", lambda s: helsinki_pbf().read_bytes(),
                                   "OpenStreetMap extract under another name"),
}


def test_an_openstreetmap_extract_uploads_and_dry_runs(admin_client, imports_dir):
    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "second_city" / "specs" / "osm_facilities.yaml")
                          .read_text(encoding="utf-8"))
    spec.pop("owner")  # the test city's levels are not in this database (tests/importers/test_osm.py loads them)
    response = admin_client.post(UPLOAD, {"file": SimpleUploadedFile("Helsinki.osm.pbf", helsinki_pbf().read_bytes()),
                                          "spec_file": uploaded_spec(spec)})
    assert response.status_code == 302, response.context and response.context["form"].errors
    run = ImportRun.objects.latest("pk")
    assert (run.status, run.file_name, run.counts["read"]) == (ImportRun.Status.DRY_RUN, "Helsinki.osm.pbf", 701)


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_uploads_are_refused_with_one_line(admin_client, imports_dir, server_secret, case):
    name, content, reason = HOSTILE[case]
    response = admin_client.post(UPLOAD, {"file": SimpleUploadedFile(name, content(server_secret)),
                                          "spec_file": uploaded_spec(LIGHTS_SPEC)})
    assert response.status_code == 200 and ERROR in levels(response)
    message = str([m for m in response.context["messages"]][0])
    assert "\n" not in message and message.startswith(name) and reason in message
    run = ImportRun.objects.latest("pk")
    assert run.status == ImportRun.Status.FAILED and run.file_name == name
    report = admin_client.get(run_url("report", run)).content.decode()
    change = admin_client.get(reverse("admin:importers_importrun_change", args=[run.pk])).content.decode()
    for page in (response.content.decode(), report, change, run.error):
        assert SECRET not in page
        for where in (str(imports_dir), str(settings.BASE_DIR), str(server_secret.parent)):
            assert where not in page
    assert not Facility.objects.filter(dataset__code="t-upload-lights").exists()


@pytest.mark.parametrize("place", ["unreadable file", "broken spec", "report"])
def test_the_upload_pages_name_files_as_uploaded_and_show_no_server_path(admin_client, imports_dir, place):
    data = {"file": SimpleUploadedFile("Мой файл.geojson", b"{not GeoJSON" if place == "unreadable file"
                                       else lights().encode()),
            "spec_file": (SimpleUploadedFile("мой spec.yaml", b"dataset: [unclosed\n") if place == "broken spec"
                          else uploaded_spec(LIGHTS_SPEC))}
    response = admin_client.post(UPLOAD, data, follow=True)
    run = ImportRun.objects.latest("pk")
    pages = [response.content.decode(), admin_client.get(run_url("report", run)).content.decode()]
    if place == "report":
        assert run.status == ImportRun.Status.DRY_RUN
        pages.append(b"".join(admin_client.get(run_url("download", run, "report")).streaming_content).decode())
        assert "Мой файл.geojson" in pages[-1]
    else:
        shown = str(list(response.context["messages"])[0])
        assert ("Мой файл.geojson" if place == "unreadable file" else "мой spec.yaml") in shown
    for page in pages:
        assert str(imports_dir) not in page and str(settings.BASE_DIR) not in page


def test_a_dry_run_rejects_what_the_commit_could_not_store(admin_client, imports_dir):
    """The reported case: a category group of 150 characters passed the dry run, then aborted the commit."""
    group = "г" * 150
    assert group and len(group) > TRANSLATED_MAX["group"]
    rows = [{"code": "t-upload-ok", "name_ru": "Яма", "name_en": "Pothole", "group_ru": "Дороги",
             "group_en": "Roads", "rule": "district"},
            {"code": "t-upload-long", "name_ru": "Яма", "name_en": "Pothole", "group_ru": group,
             "group_en": "Roads", "rule": "district"}]
    spec = {"dataset": "t-upload-cats", "target": "categories", "key": "code",
            **{k: k for k in ("code", "name_ru", "name_en", "group_ru", "group_en", "rule")}}
    admin_client.post(UPLOAD, {"file": SimpleUploadedFile("cats.yaml", yaml.safe_dump(rows, allow_unicode=True)
                                                          .encode()), "spec_file": uploaded_spec(spec)})
    dry = ImportRun.objects.latest("pk")
    assert dry.status == ImportRun.Status.DRY_RUN, dry.error
    assert (dry.counts["created"], dry.counts["rejected"]) == (1, 1)
    report = admin_client.get(run_url("report", dry))
    assert [r[0] for r in report.context["rejects"]] == ["2"] and "group_ru" in report.context["rejects"][0][2]
    commit(admin_client, dry)
    run = ImportRun.objects.latest("pk")
    assert run.status == ImportRun.Status.COMMITTED
    assert (run.counts["created"], run.counts["rejected"]) == (1, 1)
    assert Category.objects.filter(code="t-upload-ok").exists()
    assert not Category.objects.filter(code="t-upload-long").exists()


def test_the_run_page_shows_no_traceback_and_no_file_of_the_server(admin_client, imports_dir):
    run = ImportRun.objects.create(
        dataset_code="t", actor="t", file_name="x.geojson", file_sha256="0" * 64, spec={},
        status=ImportRun.Status.FAILED, report_path=str(imports_dir / "run-1" / "report.txt"),
        rejects_path=str(imports_dir / "run-1" / "rejects.csv"),
        error=f'RuntimeError: disk full\n\nTraceback (most recent call last):\n  File '
              f'"{settings.BASE_DIR}/importers/core.py"')
    page = admin_client.get(reverse("admin:importers_importrun_change", args=[run.pk])).content.decode()
    assert "disk full" in page
    assert str(settings.BASE_DIR) not in page and str(imports_dir) not in page


@pytest.mark.parametrize("who", ["another data clerk", "a clerk without the permission", "not logged in"])
def test_only_the_uploader_or_a_superuser_starts_the_commit(client, admin_client, city, imports_dir, who):
    from importers.permissions import ensure_data_staff_group

    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    dry = ImportRun.objects.latest("pk")
    if who != "not logged in":
        user = User.objects.create_user("t-clerk", password="x", is_staff=True)
        if who == "another data clerk":
            user.groups.add(ensure_data_staff_group())
        client.force_login(user)
    response = client.post(run_url("commit", dry))
    assert response.status_code == (302 if who == "not logged in" else 403)
    assert not ImportCommit.objects.exists() and ImportRun.objects.latest("pk").pk == dry.pk
    if who == "another data clerk":  # they see the run, with no commit button
        page = client.get(run_url("report", dry))
        assert page.status_code == 200 and run_url("commit", dry) not in page.content.decode()


def test_the_progress_of_a_queued_commit(admin_client, city, imports_dir):
    admin_client.post(UPLOAD, {"file": okrugs_file(), "spec_file": spec_file()})
    dry = ImportRun.objects.latest("pk")
    assert admin_client.get(run_url("progress", dry)).status_code == 404  # nothing queued yet
    admin_client.post(run_url("commit", dry))
    queued = admin_client.get(run_url("report", dry))
    assert '<meta http-equiv="refresh"' in queued.content.decode()  # it refreshes itself while queued
    assert admin_client.get(run_url("progress", dry)).json()["state"] == "queued"
    import_commit(ImportCommit.objects.get().pk)
    progress = admin_client.get(run_url("progress", dry)).json()
    run = ImportRun.objects.latest("pk")
    assert progress["state"] == "done" and progress["run"] == run.pk
    assert progress["rows_read"] == 12 and progress["rows_loaded"] == 12
    assert '<meta http-equiv="refresh"' not in admin_client.get(run_url("report", dry)).content.decode()
    assert import_commit(ImportCommit.objects.get().pk) == "done"  # run again: nothing imported twice
    assert ImportRun.objects.latest("pk").pk == run.pk
