"""/photos/<id>/: the public photos of complaints (mounted in geo_ourcity/urls.py)."""
from django.urls import path

from . import views

app_name = "complaints"

urlpatterns = [
    path("<int:photo_id>/", views.photo, name="photo"),
]
