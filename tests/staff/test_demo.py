"""The demo staff logins that `make demo` prints: one per role, each working a real demo organisation."""
from django.contrib.auth import get_user_model

from complaints.selectors import is_dispatcher, tickets_for_user
from geo_ourcity.demo import DEMO_PASSWORD, ensure_demo_users
from staff.demo import ensure_demo_staff


def test_demo_users_include_every_staff_role(db):
    rows = ensure_demo_users()
    logins = [login for login, _password, _role in rows]
    assert logins == ["admin", "datastaff", "moderator", "volunteer", "council", "school", "hospital", "dispatcher"]
    roles = dict((login, role) for login, _password, role in rows)
    assert "Управа района Тверской" in roles["council"]
    assert roles["school"].startswith("school staff (/staff/): ГБОУ")
    assert "hospital" in roles["hospital"] and "dispatcher" in roles["dispatcher"]


def test_ensure_demo_staff_is_idempotent(db):
    User = get_user_model()
    first = ensure_demo_staff(DEMO_PASSWORD)
    count = User.objects.count()
    assert ensure_demo_staff(DEMO_PASSWORD) == first
    assert User.objects.count() == count
    users = {u.username: u for u in User.objects.filter(username__in=["council", "school", "hospital",
                                                                       "dispatcher"])}
    assert users["school"].check_password(DEMO_PASSWORD)
    council = {d.authority.short_name for d in users["council"].departments.select_related("authority")}
    assert council == {"Управа района Тверской"}
    assert users["council"].departments.count() == 3  # every department of the council
    assert users["hospital"].departments.get().authority.facilities.filter(type__code="hospital").exists()
    assert is_dispatcher(users["dispatcher"]) and not is_dispatcher(users["school"])
    assert not users["school"].is_staff  # the workspace is theirs, the admin is not
    assert tickets_for_user(users["school"]).query is not None
