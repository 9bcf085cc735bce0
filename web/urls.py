from django.urls import path

from . import feeds, notify_views, views, volunteer

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
    # hearing back (web/notify_views.py, complaints.notify): public pages by number, follows, alerts, account
    path("n/<int:pk>/", notify_views.complaint_number_page, name="complaint-number"),
    path("n/<int:pk>/follow/", notify_views.complaint_follow, name="complaint-follow"),
    path("n/<int:pk>/support/", notify_views.complaint_support, name="complaint-support"),
    path("follow/<str:token>/", notify_views.follow_confirm_view, name="follow-confirm"),
    path("unsubscribe/<str:token>/", notify_views.unsubscribe_view, name="unsubscribe"),
    path("alerts/", notify_views.alerts_page, name="alerts"),
    path("alerts/<str:token>/", notify_views.alert_confirm_view, name="alert-confirm"),
    path("account/", notify_views.account_page, name="account"),
    path("account/enter/<str:token>/", notify_views.signin_enter, name="signin-enter"),
    path("account/out/", notify_views.signout, name="signout"),
    path("feeds/complaint/<int:pk>/", feeds.ComplaintFeed(), name="feed-complaint"),
    path("feeds/district/<int:area_id>/", feeds.DistrictFeed(), name="feed-district"),
    path("feeds/group/<str:group>/", feeds.GroupFeed(), name="feed-group"),
]
