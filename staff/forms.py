"""Forms of the staff workspace: the ticket list's filters and the four actions on a ticket.

The forms check the input's shape; the rules (states, who may act, photos) are the complaint services'.
"""
from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from complaints.models import State
from complaints.selectors import complaints_public
from facilities.models import AdminArea, Department
from facilities.selectors import finest_level
from routing.models import Category
from web.labels import STATE_LABELS, localized

from .selectors import ALL, OPEN

SORT_CHOICES = [
    ("deadline", _("Deadline, soonest first")),
    ("-deadline", _("Deadline, latest first")),
    ("-submitted", _("Newest first")),
]


class StyledForm(forms.Form):
    """Bootstrap's classes on every widget."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            widget.attrs["class"] = css


class CategoryChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return localized(obj, "name")


class DistrictChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.name


class DepartmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class TicketFilterForm(StyledForm):
    state = forms.ChoiceField(label=_("State"), required=False, choices=[
        (OPEN, _("To work on")), (ALL, pgettext_lazy("states", "All")),
        *((s.value, STATE_LABELS[s]) for s in State)])
    category = CategoryChoiceField(label=_("Category"), required=False, to_field_name="code",
                                   queryset=Category.objects.all(), empty_label=pgettext_lazy("categories", "All"))
    district = DistrictChoiceField(label=_("District"), required=False, empty_label=pgettext_lazy("districts", "All"),
                                   queryset=AdminArea.objects.none())
    overdue = forms.BooleanField(label=_("Overdue only"), required=False)
    sort = forms.ChoiceField(label=_("Sort"), required=False, choices=SORT_CHOICES)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The areas of the city's deepest level (districts, wards ...): data, so read when the form is made.
        self.fields["district"].queryset = (AdminArea.objects.active().filter(level=finest_level() or "")
                                            .only("id", "name").order_by("name"))

    def filters(self):
        """The filters to apply: the valid ones of the query, defaults for the rest."""
        self.is_valid()
        data = self.cleaned_data
        return {"state": data.get("state") or OPEN, "category": data.get("category"),
                "district": data.get("district"), "overdue": bool(data.get("overdue")),
                "sort": data.get("sort") or "deadline"}


class TakeForm(StyledForm):
    """No input: taking a ticket into work is one button (the form is there for CSRF and symmetry)."""


class AnswerForm(StyledForm):
    text = forms.CharField(label=_("Public answer"), max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 4}))
    photo = forms.FileField(label=_("Photo (JPEG, PNG or WebP)"), required=False,
                            widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))


class TransferForm(StyledForm):
    department = DepartmentChoiceField(
        label=_("To department"), required=False, empty_label=_("Let the routing decide again"),
        queryset=Department.objects.select_related("authority").order_by("authority__short_name", "name"))
    reason = forms.CharField(label=_("Reason"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class RecategoriseForm(StyledForm):
    """Accept a suggested category (the ticket list's flag): the category and, optionally, why."""

    category = CategoryChoiceField(label=_("Category"), to_field_name="code",
                                   queryset=Category.objects.filter(active=True))
    reason = forms.CharField(label=_("Reason"), required=False, max_length=1000)


class DuplicateForm(StyledForm):
    """The original by its public number (№, the id): never by tracking code, the resident's key."""
    duplicate_of = forms.CharField(label=_("Number of the original complaint"), max_length=20)

    def clean_duplicate_of(self):
        number = self.cleaned_data["duplicate_of"].strip().lstrip("№#").strip()
        original = complaints_public().filter(pk=int(number)).first() \
            if number.isascii() and number.isdigit() and len(number) <= 18 else None
        if original is None:
            raise forms.ValidationError(_("No complaint with this number."))
        return original


class ReturnAnswerForm(StyledForm):
    """A moderator returns an answer to its department: why (the department reads it; the public does not)."""
    reason = forms.CharField(label=_("Why it goes back to the department"), max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 3}))
