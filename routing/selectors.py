"""Reads of the service catalogue (the writes are imports: importers target `categories`, `assignments`)."""
from django.db.models import Prefetch
from django.db.models.fields.json import KeyTextTransform

from geo_ourcity.languages import default_language

from .models import Category, CategoryAttribute


def categories_active():
    """The catalogue as residents and Open311 clients see it: active categories by group and name, with their
    questions (in order) and facility types loaded."""
    return (Category.objects.filter(active=True)
            .prefetch_related(Prefetch("attributes", queryset=CategoryAttribute.objects.order_by("order", "code")),
                              "facility_types")
            .order_by(*translated_order("group_i18n", "name_i18n"), "code"))


def translated_order(*fields):
    """Order by translated fields in the city's default language (whose value every row has)."""
    lang = default_language()
    return [KeyTextTransform(lang, name) for name in fields]


def category_active(code):
    """The active category with this Open311 service_code, or None."""
    return categories_active().filter(code=code).first()
