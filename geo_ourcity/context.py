"""Template context of the city's profile: its site name and contact (settings OURCITY_SITE_NAME, _CONTACT)."""
from django.conf import settings
from django.utils.translation import gettext_lazy as _


def site(request):
    return {"brand_name": settings.SITE_NAME or _("Our City"), "site_contact": settings.SITE_CONTACT}
