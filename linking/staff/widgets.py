"""Names for inputs the admin renders without a <label> of their own: the date and
the time of a split date-time field, and the columns of a tabular inline."""

from django import forms
from django.utils.text import capfirst
from django.utils.translation import gettext as _


def name_inputs(formfield: forms.Field | None) -> forms.Field | None:
    """Give each input of the field an aria-label from the field's label."""
    if formfield is None:
        return None
    widget = getattr(formfield.widget, "widget", formfield.widget)  # a related-field wrapper
    label = str(capfirst(formfield.label or ""))
    if isinstance(widget, forms.SplitDateTimeWidget):
        date, time = widget.widgets
        date.attrs["aria-label"] = _("%(field)s (date)") % {"field": label}
        time.attrs["aria-label"] = _("%(field)s (time)") % {"field": label}
    else:
        widget.attrs.setdefault("aria-label", label)
    return formfield
