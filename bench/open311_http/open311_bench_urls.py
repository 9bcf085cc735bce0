"""The project's URLs plus the floor endpoint, which exists only in the benchmark's server."""
from django.urls import path

from geo_ourcity.urls import urlpatterns as project_urlpatterns
from open311_floor import floor

urlpatterns = [path("bench/floor", floor), *project_urlpatterns]
