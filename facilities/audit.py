"""The membership audit: every change of who belongs where becomes a MembershipChange (who, when, before, after).

Recorded from Django's signals, so every ORM path is covered: admin forms, `add`/`remove`/`set`/`clear` on either
side of the many-to-many relations (department.staff / user.departments, user.groups / group.user_set,
user.user_permissions, group.permissions), deleting a department or a group (its members leave it), `User.save()`
and `create_user`, commands and the shell. The actor is the request's user (AuditActorMiddleware), else the
process ("manage.py load_demo (os user web)"); `audit_actor()` names one explicitly. Not seen (as for any signal): raw SQL, `QuerySet.update()` and `bulk_create()` on these
tables; the project has no such writes.
"""
import contextlib
import contextvars
import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from .models import Department, MembershipChange

FLAGS = ("is_active", "is_staff", "is_superuser")

_actor = contextvars.ContextVar("membership_audit_actor", default=None)


@contextlib.contextmanager
def audit_actor(actor):
    """Record changes made inside this block as made by `actor` (a user, a label such as "importer", or a
    function returning a user or None)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


class AuditActorMiddleware:
    """Changes made while a request is served are recorded as made by its logged-in user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Lazy: the user is looked up only if the request changes a membership.
        with audit_actor(lambda: getattr(request, "user", None)):
            return self.get_response(request)


def _process_label():
    argv = sys.argv or ["python"]
    name = os.path.basename(argv[0])
    if name == "manage.py" and len(argv) > 1:
        name = f"manage.py {argv[1]}"
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = str(os.getuid())
    return f"{name} (os user {os_user})"[:300]


def _actor_fields():
    actor = _actor.get()
    if callable(actor):
        actor = actor()
        if actor is not None and not actor.is_authenticated:
            actor = None
    if actor is None:
        return {"actor": None, "actor_label": _process_label()}
    if isinstance(actor, str):
        return {"actor": None, "actor_label": actor[:300]}
    return {"actor": actor if actor.pk else None, "actor_label": actor.get_username()[:300]}


# What each relation records: (through model, subject model, subject field, object field, kind, labels of objects).
def _department_labels(pks):
    departments = Department.objects.select_related("authority").filter(pk__in=pks)
    return {d.pk: f"{d.display_name} [#{d.pk}]" for d in departments}


def _group_labels(pks):
    return dict(Group.objects.filter(pk__in=pks).values_list("pk", "name"))


def _permission_labels(pks):
    rows = Permission.objects.filter(pk__in=pks).values_list("pk", "content_type__app_label", "codename")
    return {pk: f"{app}.{codename}" for pk, app, codename in rows}


def _relations():
    User = get_user_model()
    return {
        Department.staff.through: (User, "user", "department", MembershipChange.Kind.DEPARTMENTS, _department_labels),
        User.groups.through: (User, "user", "group", MembershipChange.Kind.GROUPS, _group_labels),
        User.user_permissions.through: (User, "user", "permission", MembershipChange.Kind.PERMISSIONS,
                                        _permission_labels),
        Group.permissions.through: (Group, "group", "permission", MembershipChange.Kind.GROUP_PERMISSIONS,
                                    _permission_labels),
    }


def _memberships(through, subject_field, object_field, labels, subject_pks):
    """{subject pk: sorted labels of what it belongs to / holds}, for each of `subject_pks`."""
    pairs = list(through.objects.filter(**{f"{subject_field}_id__in": subject_pks})
                 .values_list(f"{subject_field}_id", f"{object_field}_id"))
    names = labels({o for _, o in pairs})
    result = {pk: [] for pk in subject_pks}
    for subject, obj in pairs:
        result[subject].append(names.get(obj, f"#{obj}"))
    return {pk: sorted(items) for pk, items in result.items()}


def _on_m2m_changed(sender, instance, action, pk_set, **kwargs):
    relation = _relations().get(sender)
    if relation is None or action not in ("pre_add", "post_add", "pre_remove", "post_remove", "pre_clear",
                                          "post_clear"):
        return
    subject_model, subject_field, object_field, kind, labels = relation
    stash = instance.__dict__.setdefault("_membership_audit", {})
    key = (sender, action.split("_", 1)[1])
    if action.startswith("pre_"):
        if isinstance(instance, subject_model):
            subjects = [instance.pk]
        elif pk_set is not None:
            subjects = sorted(pk_set)
        else:  # clear from the other side: everyone it had
            subjects = list(sender.objects.filter(**{f"{object_field}_id": instance.pk})
                            .values_list(f"{subject_field}_id", flat=True))
        stash[key] = (subjects, _memberships(sender, subject_field, object_field, labels, subjects))
        return
    subjects, before = stash.pop(key, ([], {}))
    if subjects:
        _record(sender, subjects, before)


def _record(through, subjects, before):
    """Rows for each subject whose memberships in `through` differ now from `before`."""
    subject_model, subject_field, object_field, kind, labels = _relations()[through]
    after = _memberships(through, subject_field, object_field, labels, subjects)
    subject_labels = {s.pk: str(s) for s in subject_model.objects.filter(pk__in=subjects)}
    rows = [MembershipChange(kind=kind, **{subject_field + "_id": pk}, subject_label=subject_labels.get(pk, f"#{pk}"),
                             before=before.get(pk, []), after=after[pk], **_actor_fields())
            for pk in subjects if before.get(pk, []) != after[pk]]
    MembershipChange.objects.bulk_create(rows)


def _deleted_relation(sender):
    """Deleting a department or a group takes its members out of it (no m2m signal says so)."""
    User = get_user_model()
    return {Department: (Department.staff.through, "department"), Group: (User.groups.through, "group")}[sender]


def _on_pre_delete(sender, instance, **kwargs):
    through, object_field = _deleted_relation(sender)
    _, subject_field, _, _, labels = _relations()[through]
    subjects = list(through.objects.filter(**{f"{object_field}_id": instance.pk})
                    .values_list(f"{subject_field}_id", flat=True))
    instance.__dict__["_membership_audit_delete"] = (
        subjects, _memberships(through, subject_field, object_field, labels, subjects))


def _on_post_delete(sender, instance, **kwargs):
    subjects, before = instance.__dict__.pop("_membership_audit_delete", ([], {}))
    if subjects:
        _record(_deleted_relation(sender)[0], subjects, before)


def _on_user_pre_save(sender, instance, update_fields=None, raw=False, **kwargs):
    if raw or (update_fields is not None and not set(update_fields) & set(FLAGS)):
        instance.__dict__.pop("_membership_flags_before", None)
        return
    old = sender.objects.filter(pk=instance.pk).values(*FLAGS).first() if instance.pk else None
    instance.__dict__["_membership_flags_before"] = old


def _on_user_post_save(sender, instance, created, raw=False, **kwargs):
    if raw or "_membership_flags_before" not in instance.__dict__:
        return
    before = instance.__dict__.pop("_membership_flags_before")
    after = {flag: getattr(instance, flag) for flag in FLAGS}
    if before == after or (before is None and not (after["is_staff"] or after["is_superuser"])):
        return  # unchanged, or a new login of no special standing (its memberships are recorded as they come)
    MembershipChange.objects.create(kind=MembershipChange.Kind.FLAGS, user=instance, subject_label=str(instance),
                                    before=before, after=after, **_actor_fields())


def connect():
    User = get_user_model()
    for through in _relations():
        m2m_changed.connect(_on_m2m_changed, sender=through, dispatch_uid=f"membership_audit_{through._meta.label}")
    for model in (Department, Group):
        pre_delete.connect(_on_pre_delete, sender=model, dispatch_uid=f"membership_audit_delete_{model._meta.label}")
        post_delete.connect(_on_post_delete, sender=model, dispatch_uid=f"membership_audit_deleted_{model._meta.label}")
    pre_save.connect(_on_user_pre_save, sender=User, dispatch_uid="membership_audit_user_pre")
    post_save.connect(_on_user_post_save, sender=User, dispatch_uid="membership_audit_user_post")
