from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("open311/v2/", include("open311.urls")),
    re_path(r"^open311(?:/|$)", include("open311.fallback_urls")),  # the rest under /open311: Open311's 404 list
    # The project's REST API: OpenAPI 3 schema and its Swagger UI page (assets from drf-spectacular-sidecar; the
    # split view serves its start-up script as a file of its own, within the Content-Security-Policy).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
    # The project's own REST API (version 1): the category suggestion (routing/api.py).
    path("api/v1/", include("routing.api_urls")),
    # ... and the open complaints near a point, before filing a duplicate (complaints/api.py).
    path("api/v1/", include("complaints.api_urls")),
    # Language switch (POST language=ru|en) for the residents' pages.
    path("i18n/", include("django.conf.urls.i18n")),
    # The department staff workspace: ticket lists, ticket pages and their actions (staff/).
    path("staff/", include("staff.urls")),
    path("photos/", include("complaints.urls")),  # public complaint photos (Open311 media_url)
    # The residents' map, reporting, complaint pages and statistics (last: it owns "/").
    path("", include("web.urls")),
]

# The project's own error pages, in the visitor's language (or a protocol's error list: geo_ourcity/faults.py).
handler400 = "geo_ourcity.faults.bad_request"
handler403 = "geo_ourcity.faults.permission_denied"
handler404 = "geo_ourcity.faults.page_not_found"
handler500 = "geo_ourcity.faults.server_error"
