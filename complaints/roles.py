"""Who moderates answers (issue 10): the permission complaints.moderate_answer (Answer's Meta), held by the group
"Answer moderators" (made by migration 0011; ensure_moderators_group makes it again where a database was emptied)."""
from django.contrib.auth.models import Group, Permission

MODERATE_PERMISSION = "complaints.moderate_answer"
MODERATORS_GROUP = "Answer moderators"


def ensure_moderators_group():
    """The moderators' group with its permission; idempotent. Needs the permission that `migrate` creates."""
    group, _ = Group.objects.get_or_create(name=MODERATORS_GROUP)
    app_label, codename = MODERATE_PERMISSION.split(".")
    group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return group
