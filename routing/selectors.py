"""Reads of the service catalogue (the writes are imports: importers target `categories`, `assignments`)."""
from django.db.models import Prefetch

from .models import Category, CategoryAttribute


def categories_active():
    """The catalogue as residents and Open311 clients see it: active categories by group and name, with their
    questions (in order) and facility types loaded."""
    return (Category.objects.filter(active=True)
            .prefetch_related(Prefetch("attributes", queryset=CategoryAttribute.objects.order_by("order", "code")),
                              "facility_types")
            .order_by("group_ru", "name_ru"))


def category_active(code):
    """The active category with this Open311 service_code, or None."""
    return categories_active().filter(code=code).first()
