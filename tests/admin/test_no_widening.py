"""Nobody widens their own access through the admin (issue 8, section 2).

For every non-superuser role of the demo (geo_ourcity.demo) and two stronger made-up ones (a staff login holding
every permission but superuser, and a holder of the department-membership permission), log in and walk every
admin URL, generated from the admin registry (so a model registered later is walked too): the index, each model's
list, add form, the change, history and delete pages of sample objects, and the pages a ModelAdmin adds (the
import upload, reports, commit). Every add and change form is
submitted as the page shows it, plus crafted fields that would widen the role (staff, departments, groups,
permissions, the superuser and staff flags, a group renamed to the dispatchers'), all at once and one by one;
every list action but deletion is run on a sample. After each request the role's effective access (its flags,
permissions, groups, departments, dispatcher standing, tickets) and every other account's password must be as
before; no page a demo role reaches may show a resident's contact data.
"""
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.gis.geos import Point
from django.urls import reverse
from django.urls.converters import IntConverter

from complaints.selectors import DISPATCHERS_GROUP, is_dispatcher, tickets_for_user
from complaints.services import complaint_create
from facilities.access import MEMBERSHIP_PERMISSION
from facilities.models import Department
from geo_ourcity.demo import ADMIN_LOGIN, demo_logins, ensure_demo_users
from routing.models import Category

pytestmark = pytest.mark.django_db
User = get_user_model()

EVERY_PERMISSION = "t-adm-every-permission"  # is_staff, holds every permission, is no superuser
MEMBERSHIP_MANAGER = "t-adm-membership-manager"  # may change other people's department membership
DEMO_ROLES = [login for login in demo_logins() if login != ADMIN_LOGIN]
CONTACT = {"first_name": "Зинаида-Контакт", "last_name": "Проверкина", "email": "contact-sentinel@example.org",
           "phone": "+7 900 555-01-23"}
WIDENING_NAMES = ("staff", "departments", "groups", "user_permissions", "permissions", "user_set", "is_superuser",
                  "is_staff", "is_active")


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The walk sends every permission in one POST: the form must refuse it, not the request size limit.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = None


def test_the_walk_covers_every_demo_role_and_only_the_admin_is_a_superuser():
    logins = [login for login, _password, _role in ensure_demo_users()]
    assert logins == demo_logins()
    assert list(User.objects.filter(username__in=logins, is_superuser=True).values_list("username", flat=True)) == [
        ADMIN_LOGIN]


def make_role(login):
    ensure_demo_users()
    if login == EVERY_PERMISSION:
        user = User.objects.create_user(login, is_staff=True)
        user.user_permissions.set(Permission.objects.all())
    elif login == MEMBERSHIP_MANAGER:
        user = User.objects.create_user(login, is_staff=True)
        user.user_permissions.set([Permission.objects.get(codename=codename) for codename in (
            "view_department", "change_department", MEMBERSHIP_PERMISSION.split(".")[1], "view_user")])
    else:
        user = User.objects.get(username=login)
    return user


def access(user_pk):
    """What the role may reach, read afresh (no permission cache), and every other account's credentials."""
    user = User.objects.get(pk=user_pk)
    return {
        "flags": (user.is_active, user.is_staff, user.is_superuser),
        "permissions": sorted(user.get_all_permissions()),
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "departments": sorted(Department.objects.filter(staff=user).values_list("pk", flat=True)),
        "dispatcher": is_dispatcher(user),
        "tickets": tickets_for_user(user).count(),
        "others": sorted(User.objects.exclude(pk=user_pk).values_list("username", "password", "is_active",
                                                                        "is_superuser")),
    }


class FormFields(HTMLParser):
    """The fields a browser would submit from the admin's <form id="..._form">."""

    def __init__(self):
        super().__init__()
        self.fields, self.names, self.in_form, self.select, self.textarea = [], set(), False, None, None
        self.text_inputs = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("id") or "").endswith("_form"):
            self.in_form = True
        if not self.in_form or "name" not in a and tag in ("input", "select", "textarea"):
            return
        if tag in ("input", "select", "textarea"):
            self.names.add(a["name"])
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind == "text":
                self.text_inputs.add(a["name"])
            self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self.select = {"name": a["name"], "multiple": "multiple" in a, "chosen": [], "first": None}
        elif tag == "option" and self.select is not None:
            value = a.get("value", "")
            if self.select["first"] is None:
                self.select["first"] = value
            if "selected" in a:
                self.select["chosen"].append(value)
        elif tag == "textarea":
            self.textarea = [a["name"], ""]

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        elif tag == "select" and self.select is not None:
            s = self.select
            chosen = s["chosen"] or ([] if s["multiple"] or s["first"] is None else [s["first"]])
            self.fields += [(s["name"], value) for value in chosen]
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self.fields.append((self.textarea[0], self.textarea[1].lstrip("\n")))
            self.textarea = None


def form_data(html):
    """({name: [values]} as a browser submits the form, the names of all its fields, empty ones included)."""
    parser = FormFields()
    parser.feed(html)
    data = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    return data, parser.names, parser.text_inputs


def filled_add_form(add, change, tag):
    """An add form filled from a sample's change form (its text made unique with `tag`), so that it can save: the
    crafted fields are then tried on a form that would be stored, not only on one refused as incomplete."""
    data, names, _ = add
    sample, _, text_inputs = change
    filled = dict(data)
    for name in names:
        if "-" in name or name not in sample:
            continue  # inline rows keep the add page's management forms
        if name in text_inputs:
            filled[name] = [f"{v}-{tag}" if v else v for v in sample[name]]
        elif filled.get(name, [""]) in ([""], []):
            filled[name] = sample[name]
    return filled


def widening_values(me):
    return {
        "staff": [str(me.pk)],
        "user_set": [str(me.pk)],
        "departments": [str(pk) for pk in Department.objects.values_list("pk", flat=True)],
        "groups": [str(pk) for pk in Group.objects.values_list("pk", flat=True)],
        "user_permissions": [str(pk) for pk in Permission.objects.values_list("pk", flat=True)],
        "permissions": [str(pk) for pk in Permission.objects.values_list("pk", flat=True)],
        "is_superuser": ["on"], "is_staff": ["on"], "is_active": ["on"],
    }


def submissions(visible, names, me):
    """Crafted POSTs from a form as shown: every widening field at once (on the form and on each inline row),
    then each widening field that the form shows, alone, so that one refused field does not hide another."""
    values = widening_values(me)
    prefixes = [name[:-len("-TOTAL_FORMS")] for name in visible if name.endswith("-TOTAL_FORMS")]
    crafted = dict(values)
    for prefix in prefixes:
        rows = int(visible[f"{prefix}-TOTAL_FORMS"][0] or 0)
        crafted.update({f"{prefix}-{i}-{name}": value for i in range(min(rows, 3)) for name, value in values.items()})
    yield "all widening fields", {**visible, **crafted, "_save": ["Save"]}
    for name in sorted(names):
        if name.rsplit("-", 1)[-1] in WIDENING_NAMES and name in crafted:
            yield name, {**visible, name: crafted[name], "_save": ["Save"]}
    if "name" in names:
        yield "name (the dispatchers' group)", {**visible, "name": [DISPATCHERS_GROUP], "_save": ["Save"]}


def samples(model, me, complaint):
    """A few objects of the model whose change pages the walk submits: the role's own where access lives."""
    pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True)[:1])
    if model is User:
        pks += [me.pk, User.objects.get(username=ADMIN_LOGIN).pk]
    elif model is Group:
        pks += list(me.groups.values_list("pk", flat=True)) + list(
            Group.objects.filter(name=DISPATCHERS_GROUP).values_list("pk", flat=True))
    elif model is Department:
        pks.append(complaint.department_id)  # the residents' contact data the attacker wants
    elif model is type(complaint):
        pks.append(complaint.pk)
    return list(dict.fromkeys(pks))


STANDARD_PAGES = ("changelist", "add", "change", "history", "delete")


def custom_pages(model_admin, objects):
    """URLs of the pages a ModelAdmin adds in get_urls(), an integer argument filled with a sample's pk."""
    info = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    urls = []
    for pattern in model_admin.get_urls():
        name = getattr(pattern, "name", None)
        if not name or name in {f"{info}_{page}" for page in STANDARD_PAGES}:
            continue
        converters = pattern.pattern.converters
        if any(type(c) is not IntConverter for c in converters.values()) or (converters and not objects):
            continue
        urls.append(reverse(f"admin:{name}", kwargs={key: objects[0] for key in converters}))
    return urls


@pytest.fixture
def complaint(db):
    category = Category.objects.filter(active=True).order_by("code").first()
    return complaint_create(category=category, point=Point(37.6056, 55.7655, srid=4326), description="Проверка",
                            **CONTACT)


@pytest.mark.parametrize("login", DEMO_ROLES + [EVERY_PERMISSION, MEMBERSHIP_MANAGER])
def test_no_admin_form_widens_the_role(client, login, complaint):
    me = make_role(login)
    before = access(me.pk)
    client.force_login(me)
    walked, reached, widened, leaks = set(), [], [], []

    def check(method, url, label=""):
        now = access(me.pk)
        if now != before:
            changed = {key: (before[key], now[key]) for key in before if before[key] != now[key]}
            widened.append(f"{method} {url} ({label}) changed {changed}"[:2000])
            raise AssertionError(widened[-1])

    def get(url):
        walked.add(url)
        response = client.get(url)
        if response.status_code == 200:
            reached.append(url)
            text = response.content.decode(errors="replace")
            if login != EVERY_PERMISSION and any(value in text for value in CONTACT.values()):
                leaks.append(url)
        check("GET", url)
        return response

    index = get(reverse("admin:index"))
    app_list = index.context["app_list"] if index.status_code == 200 else []

    for model, model_admin in admin.site._registry.items():
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        objects = samples(model, me, complaint)
        forms = {}
        for url in [reverse(f"{info}_change", args=[pk]) for pk in objects] + [reverse(f"{info}_add")]:
            response = get(url)
            ok = response.status_code == 200 and "adminform" in (response.context or {})
            forms[url] = form_data(response.content.decode()) if ok else ({}, set(), set())
            visible, names, _ = forms[url]
            for n, (label, data) in enumerate(submissions(visible, names, me)):
                if url.endswith("/add/") and objects and names:
                    filled = filled_add_form(forms[url], forms[reverse(f"{info}_change", args=[objects[0]])], f"w{n}")
                    data = {**filled, **{k: v for k, v in data.items() if v != visible.get(k)}}
                client.post(url, data)
                check("POST", url, label)
        for pk in objects:
            get(reverse(f"{info}_history", args=[pk]))
            get(reverse(f"{info}_delete", args=[pk]))  # the confirmation page only
        changelist = get(reverse(f"{info}_changelist"))
        actions = []
        if changelist.status_code == 200 and changelist.context.get("action_form"):
            actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices
                       if name and name != "delete_selected"]
        for action in actions:
            for pk in objects:
                client.post(reverse(f"{info}_changelist"), {"action": action, "_selected_action": [str(pk)],
                                                            "index": "0"})
                check("POST", reverse(f"{info}_changelist"), f"action {action}")

        for url in custom_pages(model_admin, objects):  # pages a ModelAdmin adds (the import upload, ...)
            response = get(url)
            visible = form_data(response.content.decode())[0] if response.status_code == 200 else {}
            client.post(url, {**visible, **widening_values(me)})
            check("POST", url, "widening fields")

    listed = {m["admin_url"] for app in app_list for m in app["models"] if m.get("admin_url")}
    assert listed <= walked, "an admin page of the index was not walked"
    assert not widened
    assert not leaks, f"residents' contact data shown to {login}: {leaks}"
    if me.is_staff:
        assert reached, "a staff role that reaches no admin page walks nothing"
