from django.urls import include, path

from accounts.mfa import views

urlpatterns = [
    path("", views.overview, name="mfa_overview"),
    path("verify/", views.verify, name="mfa_verify"),
    path("totp/add/", views.add_totp, name="mfa_add_totp"),
    path("passkeys/add/", views.add_passkey, name="mfa_add_passkey"),
    path("backup-codes/", views.regenerate_backup_codes, name="mfa_backup_codes"),
    path("devices/<slug:kind>/<int:pk>/remove/", views.remove_device, name="mfa_remove_device"),
    path("passkeys/<int:pk>/rename/", views.rename_passkey, name="mfa_rename_passkey"),
    path("passkeys/", include("accounts.mfa.passkeys")),
]
