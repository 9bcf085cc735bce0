"""/open311/v2/: every resource in .json and .xml (the suffix picks the format)."""
from django.urls import re_path

from . import views

app_name = "open311"
FMT = r"\.(?P<fmt>json|xml)$"  # not `format`: DRF's schema generators skip `.{format}` URLs

urlpatterns = [
    re_path(r"^discovery" + FMT, views.DiscoveryView.as_view(), name="discovery"),
    re_path(r"^services" + FMT, views.ServiceListView.as_view(), name="services"),
    re_path(r"^services/(?P<service_code>[^/]+?)" + FMT, views.ServiceDefinitionView.as_view(), name="service"),
    re_path(r"^requests" + FMT, views.RequestListView.as_view(), name="requests"),
    re_path(r"^requests/(?P<service_request_id>[^/]+?)" + FMT, views.RequestDetailView.as_view(), name="request"),
    re_path(r"^tokens/(?P<token>[^/]+?)" + FMT, views.TokenView.as_view(), name="token"),
    re_path(r"^servicerequestupdates" + FMT, views.UpdateListView.as_view(), name="updates"),
    re_path(r"^.*$", views.NotFoundView.as_view()),
]
