"""The routing app's part of the project's REST API, under /api/v1/ (geo_ourcity/urls.py)."""
from django.urls import path

from .api import PlacesView, SuggestionsView

urlpatterns = [
    path("suggestions", SuggestionsView.as_view(), name="api-suggestions"),
    path("places", PlacesView.as_view(), name="api-places"),
]
