from django.urls import path

from linking.campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("l/<str:token>/", views.landing, name="landing"),
    path("confirm/", views.confirm, name="confirm"),
    path("u/<str:code>/", views.unsubscribe_view, name="unsubscribe"),
]
