"""The complaints app's part of the project's REST API, under /api/v1/ (geo_ourcity/urls.py)."""
from django.urls import path

from .api import NearbyView

urlpatterns = [
    path("nearby", NearbyView.as_view(), name="api-nearby"),
]
