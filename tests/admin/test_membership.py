"""Department and group membership is given by administrators only, and every change of it is recorded.

The issue's example first (a data-staff login joins a hospital's department and reads its residents' contact
data), then the rules of facilities.access by crafted POSTs, then the audit (facilities.audit) on every path.
"""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.urls import reverse

from complaints.services import complaint_create
from facilities.audit import audit_actor
from facilities.models import Authority, Department, MembershipChange
from importers.permissions import ensure_data_staff_group
from routing.models import Category

pytestmark = pytest.mark.django_db
User = get_user_model()
CONTACT = {"first_name": "Зинаида", "last_name": "Проверкина", "email": "resident-sentinel@example.org",
           "phone": "+7 900 555-44-33"}


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def departments(db):
    authority = Authority.objects.create(code="t-mem-hospital", name="Test hospital", short_name="T-hospital",
                                         kind=Authority.Kind.INSTITUTION)
    return [Department.objects.create(authority=authority, code=code, name=f"Ward {code}") for code in ("a", "b")]


@pytest.fixture
def data_staff(db):
    user = User.objects.create_user("t-mem-data", password="x", is_staff=True)
    user.groups.add(ensure_data_staff_group())
    return user


@pytest.fixture
def manager(db):
    """A delegated membership manager: edits departments and their staff, is no superuser."""
    user = User.objects.create_user("t-mem-manager", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=[
        "view_department", "change_department", "change_department_membership"]))
    return user


def department_form(department, **changes):
    data = {"authority": department.authority_id, "code": department.code, "name": department.name}
    return {**data, **changes}


def change_url(department):
    return reverse("admin:facilities_department_change", args=[department.pk])


def test_data_staff_can_not_join_the_department_whose_residents_they_would_read(client, data_staff):
    category = Category.objects.filter(active=True).order_by("code").first()
    complaint = complaint_create(category=category, point=Point(37.6056, 55.7655, srid=4326), **CONTACT)
    department = complaint.department
    client.force_login(data_staff)
    page = client.get(change_url(department))
    assert page.status_code == 200 and "staff" not in page.context["adminform"].form.fields
    response = client.post(change_url(department), department_form(department, staff=[data_staff.pk]))
    assert response.status_code == 302  # the rest of the form is saved; the staff list is not read
    assert not department.staff.filter(pk=data_staff.pk).exists()
    add = client.post(reverse("admin:facilities_department_add"),
                      department_form(department, code="t-mem-new", staff=[data_staff.pk]))
    assert add.status_code == 302
    assert not Department.objects.get(authority=department.authority, code="t-mem-new").staff.exists()
    tickets = client.get(reverse("staff:tickets")).content.decode()
    assert not any(value in tickets for value in CONTACT.values())


def test_data_staff_can_not_add_a_department_with_staff_through_the_authority_inline(client, data_staff,
                                                                                      departments):
    authority = departments[0].authority
    url = reverse("admin:facilities_authority_change", args=[authority.pk])
    data = {"code": authority.code, "name": authority.name, "short_name": authority.short_name,
            "kind": authority.kind, "inn": "", "ogrn": "", "parent": "", "dataset": "", "source_key": "",
            "valid_to_0": "", "valid_to_1": "",
            "departments-TOTAL_FORMS": "1", "departments-INITIAL_FORMS": "0",
            "departments-0-code": "t-mem-inline", "departments-0-name": "Inline ward",
            "departments-0-staff": [data_staff.pk], "departments-0-authority": authority.pk}
    client.force_login(data_staff)
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert Department.objects.get(code="t-mem-inline").staff.count() == 0


@pytest.mark.parametrize("change", ["add self", "remove self"])
def test_a_membership_manager_can_not_change_their_own_membership(client, manager, departments, change):
    department = departments[0]
    if change == "remove self":
        department.staff.add(manager)
    staff = [] if change == "remove self" else [manager.pk]
    client.force_login(manager)
    response = client.post(change_url(department), department_form(department, staff=staff))
    assert response.status_code == 200
    assert "staff" in response.context["adminform"].form.errors
    assert department.staff.filter(pk=manager.pk).exists() == (change == "remove self")


def test_a_membership_manager_gives_others_membership_and_it_is_recorded(client, manager, departments):
    department = departments[0]
    colleague = User.objects.create_user("t-mem-colleague")
    client.force_login(manager)
    assert "staff" in client.get(change_url(department)).context["adminform"].form.fields
    response = client.post(change_url(department), department_form(department, staff=[colleague.pk]))
    assert response.status_code == 302
    assert list(colleague.departments.all()) == [department]
    record = MembershipChange.objects.get(user=colleague)
    assert (record.actor, record.actor_label, record.kind) == (manager, manager.username, "departments")
    assert record.before == [] and record.after == [f"{department.display_name} [#{department.pk}]"]


@pytest.fixture
def every_permission(db):
    user = User.objects.create_user("t-mem-every", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    return user


USER_FORM_WIDENING = {"is_superuser": "on", "is_staff": "on", "is_active": "on"}


@pytest.mark.parametrize("target", ["self", "other", "admin"])
def test_only_superusers_change_accounts(client, every_permission, target):
    admin_user = User.objects.create_superuser("t-mem-admin", password="x")
    other = User.objects.create_user("t-mem-other", password="x")
    user = {"self": every_permission, "other": other, "admin": admin_user}[target]
    group = Group.objects.create(name="t-mem-group")
    client.force_login(every_permission)
    url = reverse("admin:auth_user_change", args=[user.pk])
    data = {"username": user.username, **USER_FORM_WIDENING, "groups": [group.pk],
            "user_permissions": list(Permission.objects.values_list("pk", flat=True)),
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"}
    assert client.post(url, data).status_code == 403
    password = reverse("admin:auth_user_password_change", args=[user.pk])
    assert client.post(password, {"password1": "Xx-12345678", "password2": "Xx-12345678"}).status_code == 403
    user.refresh_from_db()
    assert user.password == User.objects.get(pk=user.pk).password and not user.groups.exists()
    assert user.is_superuser == (target == "admin")
    assert client.get(url).status_code == 200  # whoever holds auth.view_user may look


def test_only_superusers_create_users_and_change_groups(client, every_permission):
    client.force_login(every_permission)
    add = client.post(reverse("admin:auth_user_add"), {"username": "t-mem-puppet", "password1": "Xx-12345678",
                                                       "password2": "Xx-12345678", "usable_password": "true",
                                                       **USER_FORM_WIDENING})
    assert add.status_code == 403 and not User.objects.filter(username="t-mem-puppet").exists()
    group = ensure_data_staff_group()
    before = set(group.permissions.all())
    response = client.post(reverse("admin:auth_group_change", args=[group.pk]),
                           {"name": "City dispatchers", "permissions": list(Permission.objects.values_list(
                               "pk", flat=True))})
    assert response.status_code == 403
    group.refresh_from_db()
    assert group.name == "Data staff" and set(group.permissions.all()) == before
    assert client.post(reverse("admin:auth_group_add"), {"name": "t-mem-g"}).status_code == 403


def test_a_superuser_still_gives_membership_in_the_admin(admin_client, departments):
    colleague = User.objects.create_user("t-mem-colleague")
    department = departments[0]
    response = admin_client.post(change_url(department), department_form(department, staff=[colleague.pk]))
    assert response.status_code == 302 and list(colleague.departments.all()) == [department]


# The audit, on every path that changes who belongs where.
def labels(departments):
    return [f"{d.display_name} [#{d.pk}]" for d in departments]


# path: (what it does to (user, departments), departments before, departments after)
PATHS = {
    "department.staff.add": (lambda u, d: d[0].staff.add(u), [1], [0, 1]),
    "user.departments.add": (lambda u, d: u.departments.add(*d), [1], [0, 1]),
    "department.staff.remove": (lambda u, d: d[1].staff.remove(u), [1], []),
    "user.departments.remove": (lambda u, d: u.departments.remove(d[0]), [0, 1], [1]),
    "department.staff.clear": (lambda u, d: d[1].staff.clear(), [1], []),
    "user.departments.clear": (lambda u, d: u.departments.clear(), [0, 1], []),
    "user.departments.set": (lambda u, d: u.departments.set([d[0]]), [1], [0]),
    "department.staff.set": (lambda u, d: d[0].staff.set([u]), [1], [0, 1]),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_department_membership_path_is_recorded(departments, path):
    change, initial, expected = PATHS[path]
    user = User.objects.create_user("t-mem-subject")
    user.departments.set([departments[i] for i in initial])
    MembershipChange.objects.all().delete()
    with audit_actor("t-mem test"):
        change(user, departments)
    assert sorted(user.departments.values_list("pk", flat=True)) == [departments[i].pk for i in expected]
    records = list(MembershipChange.objects.filter(user=user).order_by("id"))
    assert records, "no record"
    assert records[0].before == sorted(labels([departments[i] for i in initial]))
    assert records[-1].after == sorted(labels([departments[i] for i in expected]))
    assert all(r.actor_label == "t-mem test" and r.kind == "departments" and r.at for r in records)
    assert all(r.before != r.after for r in records)


def test_groups_permissions_and_flags_are_recorded_on_every_side(departments):
    user = User.objects.create_user("t-mem-subject")
    group = Group.objects.create(name="t-mem-group")
    permission = Permission.objects.get(codename="view_complaint")
    MembershipChange.objects.all().delete()
    user.groups.add(group)
    group.user_set.remove(user)
    group.user_set.add(user)
    user.groups.clear()
    user.user_permissions.add(permission)
    group.permissions.add(permission)
    permission.group_set.remove(group)
    user.is_staff = True
    user.save()
    User.objects.get(pk=user.pk).save(update_fields=["last_login"])  # no flag: not recorded
    User.objects.create_superuser("t-mem-root")
    rows = [(r.kind, r.subject_label, r.before, r.after) for r in MembershipChange.objects.order_by("id")]
    flags = {"is_active": True, "is_staff": False, "is_superuser": False}
    assert rows == [
        ("groups", "t-mem-subject", [], ["t-mem-group"]),
        ("groups", "t-mem-subject", ["t-mem-group"], []),
        ("groups", "t-mem-subject", [], ["t-mem-group"]),
        ("groups", "t-mem-subject", ["t-mem-group"], []),
        ("permissions", "t-mem-subject", [], ["complaints.view_complaint"]),
        ("group_permissions", "t-mem-group", [], ["complaints.view_complaint"]),
        ("group_permissions", "t-mem-group", ["complaints.view_complaint"], []),
        ("flags", "t-mem-subject", flags, {**flags, "is_staff": True}),
        ("flags", "t-mem-root", None, {"is_active": True, "is_staff": True, "is_superuser": True}),
    ]
    assert MembershipChange.objects.filter(kind="group_permissions").first().group == group


def test_a_command_is_recorded_as_the_command(departments, monkeypatch):
    monkeypatch.setattr("sys.argv", ["manage.py", "createsuperuser"])
    call_command("createsuperuser", "--noinput", username="t-mem-cmd", email="t@example.org")
    record = MembershipChange.objects.get(subject_label="t-mem-cmd")
    assert record.actor is None and record.actor_label.startswith("manage.py createsuperuser (os user ")


def test_the_audit_is_read_only_and_for_administrators(client, admin_client, data_staff, departments):
    departments[0].staff.add(data_staff)
    record = MembershipChange.objects.filter(user=data_staff).first()
    changelist = reverse("admin:facilities_membershipchange_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200 and record in page.context["cl"].result_list
    change = reverse("admin:facilities_membershipchange_change", args=[record.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"after": "[]"}).status_code == 403
    assert admin_client.get(reverse("admin:facilities_membershipchange_add")).status_code == 403
    delete = reverse("admin:facilities_membershipchange_delete", args=[record.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    client.force_login(data_staff)
    assert client.get(changelist).status_code == 403
    assert MembershipChange.objects.get(pk=record.pk).after == record.after


def test_deleting_a_department_or_a_group_records_that_its_members_left(departments):
    user = User.objects.create_user("t-mem-subject")
    group = Group.objects.create(name="t-mem-group")
    user.groups.add(group)
    user.departments.set(departments)
    MembershipChange.objects.all().delete()
    kept, both = labels(departments[1:]), sorted(labels(departments))
    departments[0].delete()
    group.delete()
    rows = [(r.kind, r.before, r.after) for r in MembershipChange.objects.filter(user=user).order_by("id")]
    assert rows == [("departments", both, kept), ("groups", ["t-mem-group"], [])]
