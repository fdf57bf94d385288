from django.urls import path

from linking.api import views

app_name = "api"

urlpatterns = [
    path("openapi.json", views.openapi, name="openapi"),
    path("resolve", views.resolve, name="resolve"),
    path("resolve/batch", views.resolve_batch, name="resolve_batch"),
    path("unified-ids/<str:unified_id>/accounts", views.reverse, name="reverse"),
    path("link-events", views.link_events, name="link_events"),
    path("link-requests", views.link_request, name="link_requests"),
    path("link-results", views.link_result, name="link_results"),
]
