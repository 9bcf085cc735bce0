"""The project's URLs plus the floor endpoints, which exist only in the benchmark's server."""
from django.urls import path

from geo_ourcity.urls import urlpatterns as project_urlpatterns
from nearby_search_floor import nearby_floor, places_floor

urlpatterns = [path("bench/nearby-floor", nearby_floor), path("bench/places-floor", places_floor),
               *project_urlpatterns]
