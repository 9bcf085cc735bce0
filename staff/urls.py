from django.contrib.auth import views as auth_views
from django.urls import path

from . import registry_views, views

app_name = "staff"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="staff/login.html", redirect_authenticated_user=True),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.ticket_list, name="tickets"),
    path("tickets.csv", views.ticket_csv, name="tickets-csv"),
    path("exports/", views.exports, name="exports"),
    path("handons/", views.handons, name="handons"),
    path("handons.csv", views.handons_csv, name="handons-csv"),
    path("exports/<int:pk>/download/", views.export_download, name="export-download"),
    path("t/<int:pk>/", views.ticket_page, name="ticket"),
    path("t/<int:pk>/photos/<int:photo_pk>/", views.ticket_photo, name="photo"),
    path("t/<int:pk>/take/", views.take, name="take"),
    path("t/<int:pk>/answer/", views.answer, name="answer"),
    path("t/<int:pk>/transfer/", views.transfer, name="transfer"),
    path("t/<int:pk>/duplicate/", views.mark_duplicate, name="duplicate"),
    path("t/<int:pk>/category/", views.recategorise, name="recategorise"),
    # data staff: the registry corrected by hand-ons (staff.corrections)
    path("registry/", registry_views.registry_queue, name="registry"),
    path("registry/find/", registry_views.registry_find, name="registry-find"),
    path("registry/<int:pk>/", registry_views.registry_item, name="registry-item"),
    path("registry/<int:pk>/accept/", registry_views.registry_accept, name="registry-accept"),
    path("registry/<int:pk>/dismiss/", registry_views.registry_dismiss, name="registry-dismiss"),
    # issue 10: the moderators' queue of answers
    path("moderation/", views.moderation_queue, name="moderation"),
    path("moderation/<int:pk>/", views.moderation_item, name="moderation-item"),
    path("moderation/<int:pk>/publish/", views.moderation_publish, name="moderation-publish"),
    path("moderation/<int:pk>/return/", views.moderation_return, name="moderation-return"),
    path("moderation/<int:pk>/photos/<int:photo_pk>/", views.moderation_photo, name="moderation-photo"),
    path("t/<int:pk>/checks/<int:check_pk>/photo/", views.check_photo, name="check-photo"),
]
