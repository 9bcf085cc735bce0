from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "staff"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="staff/login.html", redirect_authenticated_user=True),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.ticket_list, name="tickets"),
    path("tickets.csv", views.ticket_csv, name="tickets-csv"),
    path("t/<str:code>/", views.ticket_page, name="ticket"),
    path("t/<str:code>/photos/<int:pk>/", views.ticket_photo, name="photo"),
    path("t/<str:code>/take/", views.take, name="take"),
    path("t/<str:code>/answer/", views.answer, name="answer"),
    path("t/<str:code>/transfer/", views.transfer, name="transfer"),
    path("t/<str:code>/duplicate/", views.mark_duplicate, name="duplicate"),
]
