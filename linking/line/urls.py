from django.urls import path

from linking.line import views

app_name = "line"
urlpatterns = [
    path("webhook/", views.receive, name="webhook"),
    path("link/", views.link, name="link"),
    path("unlink/", views.unlink, name="unlink"),
]
