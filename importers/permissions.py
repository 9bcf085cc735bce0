"""Who may import: the upload permission and the "Data staff" group."""
from django.contrib.auth.models import Group, Permission

# Upload a dataset, dry-run it, commit it, and read or download run reports (the admin upload pages).
UPLOAD_PERMISSION = "importers.add_importrun"

DATA_STAFF_GROUP = "Data staff"


def may_upload(user):
    """Whether this user may use the upload pages: an active admin user (the admin's own condition) holding the
    upload permission."""
    return bool(user.is_active and user.is_staff and user.has_perm(UPLOAD_PERMISSION))


def may_send_dataset(request):
    """settings.REQUEST_BODY_LIMITS' condition for the upload page's large cap: the request comes from a user who
    may upload. Reads the session only (request.user), never the body: the cap must be known before the body is
    read. Anyone else gets the ordinary cap there."""
    user = getattr(request, "user", None)
    return user is not None and may_upload(user)

# Data staff keep the registry: they read the import log and upload datasets, and see and edit registry rows.
# No deletes: rows leave the registry by being retired (valid_to); datasets are made by imports.
DATA_STAFF_PERMISSIONS = [
    "importers.add_importrun",
    "importers.view_importrun",
    "facilities.view_dataset",
    *(f"facilities.{action}_{model}"
      for model in ("authority", "department", "adminarea", "facility", "facilitytype")
      for action in ("view", "add", "change")),
]


def ensure_data_staff_group():
    """Create the "Data staff" group, or give it any of its permissions it lacks; return it. Idempotent.

    Members also need `is_staff` to reach the admin. Needs the permissions that `migrate` creates.
    """
    group, _ = Group.objects.get_or_create(name=DATA_STAFF_GROUP)
    group.permissions.add(*(_permission(name) for name in DATA_STAFF_PERMISSIONS))
    return group


def _permission(name):
    app_label, codename = name.split(".")
    try:
        return Permission.objects.get(content_type__app_label=app_label, codename=codename)
    except Permission.DoesNotExist:
        raise LookupError(f"permission {name} does not exist (run `manage.py migrate` first)") from None
