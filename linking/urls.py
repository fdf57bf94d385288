from django.urls import path

from linking import views, vouched_views

app_name = "linking"
urlpatterns = [
    path("", views.center, name="center"),
    path("service/<slug:code>/", views.service, name="service"),
    path("suggested/<int:pk>/", views.suggested, name="suggested"),
    path("account/<int:pk>/code/", views.code, name="code"),
    path("service/<slug:code>/sign-in/", views.oidc_start, name="oidc_start"),
    path("sign-in/callback/", views.oidc_callback, name="oidc_callback"),
    path("account/<int:pk>/unlink/", views.unlink, name="unlink"),
    path("from-service/<str:handle>/", vouched_views.confirm, name="vouched"),
    path("from-service/<str:handle>/cancel/", vouched_views.cancel, name="vouched_cancel"),
]
