from django.urls import path

from . import views, volunteer

app_name = "web"

urlpatterns = [
    path("", views.map_page, name="map"),
    path("tiles/complaints/<int:z>/<int:x>/<int:y>.mvt", views.complaint_tile, name="complaint-tile"),
    path("map/districts.geojson", views.districts, name="districts"),
    path("map/point/", views.point, name="point"),
    path("map/complaints/<int:pk>/", views.complaint_popup, name="complaint-popup"),
    path("report/", views.report, name="report"),
    path("c/", views.find_complaint, name="find-complaint"),
    path("c/<str:code>/", views.complaint_page, name="complaint"),
    path("c/<str:code>/confirm/", views.complaint_confirm_view, name="complaint-confirm"),
    path("c/<str:code>/deny/", views.complaint_deny_view, name="complaint-deny"),
    path("stats/", views.stats_page, name="stats"),
    path("stats/handons.csv", views.stats_handons_csv, name="stats-handons-csv"),
    # issue 10: volunteers' on-site checks (web/volunteer.py)
    path("volunteer/login/", volunteer.VolunteerLoginView.as_view(), name="volunteer-login"),
    path("volunteer/", volunteer.volunteer_list, name="volunteer"),
    path("volunteer/c/<int:pk>/", volunteer.volunteer_complaint, name="volunteer-complaint"),
    path("volunteer/c/<int:pk>/check/", volunteer.volunteer_check, name="volunteer-check"),
]
