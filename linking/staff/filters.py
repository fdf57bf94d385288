"""List filters under our own title: third-party models name their fields in
English only, and the admin titles a field's filter with the field's name."""

from django.contrib import admin
from django.utils.functional import Promise


def titled(title: str | Promise) -> type[admin.FieldListFilter]:
    """For list_filter = [("field", titled(_("..."))), ...]: the filter the admin
    would pick for the field, under this title."""

    class Titled(admin.FieldListFilter):
        def __new__(cls, field, request, params, model, model_admin, field_path):
            spec = admin.FieldListFilter.create(
                field, request, params, model, model_admin, field_path=field_path
            )
            spec.title = title
            return spec

    return Titled
