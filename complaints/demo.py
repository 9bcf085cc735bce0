"""The demo's answer-cycle logins (`make demo` and tests only), registered with geo_ourcity.demo by complaints.apps:
a moderator (the "Answer moderators" group: /staff/moderation/) and a volunteer approved for every district of the
demo city (/volunteer/)."""
from django.contrib.auth import get_user_model

MODERATOR_LOGIN = "moderator"
VOLUNTEER_LOGIN = "volunteer"


def ensure_demo_cycle_users(password):
    from facilities.models import AdminArea
    from facilities.selectors import finest_level

    from .models import Volunteer
    from .roles import ensure_moderators_group

    User = get_user_model()
    moderator, created = User.objects.get_or_create(username=MODERATOR_LOGIN, defaults={"is_staff": True})
    if created:
        moderator.set_password(password)
        moderator.save()
    moderator.groups.add(ensure_moderators_group())
    resident, created = User.objects.get_or_create(username=VOLUNTEER_LOGIN)
    if created:
        resident.set_password(password)
        resident.save()
    volunteer, _ = Volunteer.objects.get_or_create(user=resident, defaults={"approved": True,
                                                                            "note": "demo volunteer"})
    volunteer.districts.set(AdminArea.objects.active().filter(level=finest_level()))
    return [(MODERATOR_LOGIN, password, "moderator (/staff/moderation/): publishes or returns answers"),
            (VOLUNTEER_LOGIN, password, "volunteer (/volunteer/): on-site checks in every district")]
