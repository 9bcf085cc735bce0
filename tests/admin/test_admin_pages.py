"""The registry's admin pages render, edit and delete, with map widgets that load nothing from a CDN."""
import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.staticfiles import finders
from django.urls import reverse

from facilities.admin import CappedCountPaginator
from facilities.models import AdminArea, Authority, Dataset, Department, Facility, FacilityType
from importers.models import ImportRun
from importers.permissions import DATA_STAFF_GROUP, ensure_data_staff_group

pytestmark = pytest.mark.django_db

MODELS = {"dataset": "area_dataset", "authority": "authority", "department": "department", "adminarea": "area",
          "facilitytype": "type", "facility": "facility"}


def url(model, view, *args):
    return reverse(f"admin:facilities_{model}_{view}", args=args)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_list_add_and_change_pages_render(admin_client, registry, model):
    obj = registry[MODELS[model]]
    assert admin_client.get(url(model, "changelist")).status_code == 200
    assert admin_client.get(url(model, "changelist"), {"q": "test"}).status_code == 200
    assert admin_client.get(url(model, "add")).status_code == 200
    assert admin_client.get(url(model, "change", obj.pk)).status_code == 200


def test_openlayers_is_installed_as_static_files():
    # scripts/static-assets.sh (make setup) installs it from the npm registry into var/static-vendor.
    assert finders.find("vendor/ol/ol.js") and finders.find("vendor/ol/ol.css")


@pytest.mark.parametrize("model", ["adminarea", "facility"])
def test_map_widget_serves_openlayers_locally(admin_client, registry, model):
    html = admin_client.get(url(model, "change", registry[MODELS[model]].pk)).content.decode()
    assert "/static/vendor/ol/ol.js" in html
    assert "/static/vendor/ol/ol.css" in html
    assert "gis/js/OLMapWidget.js" in html
    assert "cdn." not in html and "jsdelivr" not in html
    assert 'class="vSerializedField' in html  # the geometry is in the page, whatever the base map does


def test_list_filters(admin_client, registry):
    assert admin_client.get(url("facility", "changelist"), {"state": "active"}).status_code == 200
    page = admin_client.get(url("facility", "changelist"),
                            {"dataset__id__exact": registry["dataset"].pk, "type__id__exact": registry["type"].pk})
    assert list(page.context["cl"].result_list) == [registry["facility"]]
    retired = admin_client.get(url("facility", "changelist"), {"state": "retired"})
    assert registry["facility"] not in retired.context["cl"].result_list
    areas = admin_client.get(url("adminarea", "changelist"), {"level": "district", "q": "45999001"})
    assert list(areas.context["cl"].result_list) == [registry["area"]]
    authorities = admin_client.get(url("authority", "changelist"), {"q": "7700000001", "kind": "institution"})
    assert list(authorities.context["cl"].result_list) == [registry["authority"]]


def test_facility_search_by_owner_inn_and_source_key(admin_client, registry):
    for term in ("7700000001", "f1", "Test school"):
        page = admin_client.get(url("facility", "changelist"), {"q": term})
        assert registry["facility"] in page.context["cl"].result_list, term


def test_facility_owner_is_an_autocomplete_not_a_select_of_all_authorities(admin_client, registry):
    html = admin_client.get(url("facility", "add")).content.decode()
    assert "admin-autocomplete" in html
    assert "Test auth" not in html  # no <option> per authority
    found = admin_client.get(reverse("admin:autocomplete"), {
        "app_label": "facilities", "model_name": "facility", "field_name": "owner", "term": "Test auth"})
    assert [r["text"] for r in found.json()["results"]] == ["Test auth"]


def test_facility_dataset_choices_are_facility_datasets(admin_client, registry):
    field = admin_client.get(url("facility", "add")).context["adminform"].form.fields["dataset"]
    assert set(field.queryset.values_list("target", flat=True)) == {Dataset.Target.FACILITIES}


def facility_form(registry, **changes):
    data = {"dataset": registry["dataset"].pk, "source_key": "f2", "type": registry["type"].pk,
            "owner": registry["authority"].pk, "name": "New school", "address": "", "attrs": "{}",
            "geom": "SRID=4326;POINT (37.615 55.755)", "valid_to_0": "", "valid_to_1": ""}
    return {**data, **changes}


def test_facility_add_change_delete_on_the_partitioned_table(admin_client, registry):
    response = admin_client.post(url("facility", "add"), facility_form(registry))
    assert response.status_code == 302, response.context["adminform"].form.errors
    new = Facility.objects.get(dataset=registry["dataset"], source_key="f2")
    assert new.geom.coords == pytest.approx((37.615, 55.755))

    response = admin_client.post(url("facility", "change", new.pk), facility_form(registry, name="Renamed"))
    assert response.status_code == 302
    assert Facility.objects.get(pk=new.pk).name == "Renamed"

    duplicate = admin_client.post(url("facility", "add"), facility_form(registry, source_key="f1"))
    assert duplicate.status_code == 200 and duplicate.context["adminform"].form.errors

    assert admin_client.get(url("facility", "delete", new.pk)).status_code == 200
    assert admin_client.post(url("facility", "delete", new.pk), {"post": "yes"}).status_code == 302
    assert not Facility.objects.filter(pk=new.pk).exists()


def test_area_edit_keeps_pieces(admin_client, registry):
    area = registry["area"]
    geom = "SRID=4326;MULTIPOLYGON (((37.6 55.74, 37.63 55.74, 37.63 55.76, 37.6 55.74)))"
    data = {"name": "Renamed district", "level": "district", "parent": "", "okato": area.okato, "oktmo": area.oktmo,
            "authority": area.authority_id, "geom": geom, "dataset": area.dataset_id, "source_key": "t1",
            "valid_to_0": "", "valid_to_1": ""}
    response = admin_client.post(url("adminarea", "change", area.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    area.refresh_from_db()
    assert area.name == "Renamed district" and area.geom.num_points == 4 and area.pieces.count() >= 1


def test_facility_list_counts_only_up_to_a_cap(admin_client, registry, monkeypatch):
    for key in ("f2", "f3"):
        Facility.objects.create(dataset=registry["dataset"], source_key=key, type=registry["type"],
                                geom=registry["facility"].geom)
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    page = admin_client.get(url("facility", "changelist"), {"dataset__id__exact": registry["dataset"].pk},
                            HTTP_ACCEPT_LANGUAGE="en")
    assert page.context["cl"].paginator.capped
    assert page.context["cl"].result_count == 2
    assert page.context["cl"].full_result_count is None  # no COUNT(*) of the whole table
    assert page.content.decode().count("more than 2") == 2  # in the search bar and under the list


def test_department_staff_is_a_filter_horizontal(admin_client, registry):
    html = admin_client.get(url("department", "change", registry["department"].pk)).content.decode()
    assert "selectfilter" in html


def test_dataset_cannot_be_deleted_nor_retargeted(admin_client, registry):
    dataset = registry["dataset"]
    assert admin_client.get(url("dataset", "delete", dataset.pk)).status_code == 403
    form = admin_client.get(url("dataset", "change", dataset.pk)).context["adminform"].form
    assert "target" not in form.fields


@pytest.fixture
def data_staff(db):
    user = User.objects.create_user("t-data-staff", password="x", is_staff=True)
    user.groups.add(ensure_data_staff_group())
    return user


def test_data_staff_group_is_idempotent(data_staff):
    first = set(ensure_data_staff_group().permissions.values_list("codename", flat=True))
    second = set(ensure_data_staff_group().permissions.values_list("codename", flat=True))
    assert first == second
    assert {"add_importrun", "view_importrun", "change_facility", "view_dataset"} <= first
    assert not any(code.startswith("delete_") for code in first)
    assert data_staff.groups.get().name == DATA_STAFF_GROUP
    assert data_staff.has_perm("importers.add_importrun")


def test_data_staff_see_the_registry_and_the_import_log(client, data_staff, registry):
    client.force_login(data_staff)
    assert client.get(url("facility", "change", registry["facility"].pk)).status_code == 200
    assert client.get(reverse("admin:importers_importrun_changelist")).status_code == 200
    assert client.get(reverse("admin:importers_importrun_upload")).status_code == 200


def test_view_only_user_sees_a_geometry_summary(client, registry):
    user = User.objects.create_user("t-viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_adminarea"))
    client.force_login(user)
    html = client.get(url("adminarea", "change", registry["area"].pk)).content.decode()
    assert "MULTIPOLYGON" not in html
    assert "37.61000 55.75000" in html  # the centre, in the summary


def test_import_log_is_read_only(admin_client, registry):
    run = ImportRun.objects.create(dataset_code="t", actor="t", file_name="x.geojson", file_sha256="0" * 64,
                                   spec={}, status=ImportRun.Status.DRY_RUN, counts={"created": 1})
    page = admin_client.get(reverse("admin:importers_importrun_changelist"))
    assert page.status_code == 200 and run in page.context["cl"].result_list
    assert reverse("admin:importers_importrun_upload") in page.content.decode()
    assert admin_client.get(reverse("admin:importers_importrun_change", args=[run.pk])).status_code == 200
    assert admin_client.get(reverse("admin:importers_importrun_add")).status_code == 403
    assert admin_client.get(reverse("admin:importers_importrun_delete", args=[run.pk])).status_code == 403


def test_every_registry_model_has_an_admin_page():
    for model in (AdminArea, Authority, Dataset, Department, Facility, FacilityType, ImportRun):
        assert admin.site.is_registered(model)
