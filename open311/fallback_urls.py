"""Any path under /open311/ outside /open311/v2/'s resources (/open311, /open311/v2, /open311/v3/...): Open311's
404 list, never an HTML page or a redirect that drops a POST's body."""
from django.urls import re_path

from . import views

urlpatterns = [re_path(r"", views.NotFoundView.as_view())]
