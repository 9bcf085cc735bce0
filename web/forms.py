from django import forms
from django.utils.translation import gettext_lazy as _

from complaints.validation import DESCRIPTION_MAX

from .labels import localized
from .selectors import active_categories


class ReportForm(forms.Form):
    """A resident's report from the map. The category's extra questions come as `attribute[CODE]` fields and
    are checked by complaints.validation; the photos (`photo`, repeated) by complaints.photos, both through
    complaint_create, which reports every fault at once."""

    lat = forms.FloatField(min_value=-90, max_value=90, widget=forms.HiddenInput)
    lon = forms.FloatField(min_value=-180, max_value=180, widget=forms.HiddenInput)
    category = forms.ChoiceField(label=_("What is the problem?"))
    facility = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    description = forms.CharField(label=_("Describe it"), max_length=DESCRIPTION_MAX,
                                  widget=forms.Textarea(attrs={"rows": 4}))
    email = forms.EmailField(label=_("Your e-mail, for news about it"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.categories = {c.code: c for c in active_categories()}
        self.fields["category"].choices = [("", "—")] + [(code, localized(c, "name"))
                                                          for code, c in self.categories.items()]

    def clean_category(self):
        return self.categories[self.cleaned_data["category"]]


def attributes_from(data):
    """`attribute[CODE]` and `attribute[CODE][]` form fields -> {CODE: value or [values]} (Open311's naming)."""
    raw = {}
    for key in data:
        if key.startswith("attribute[") and key.endswith("[]"):
            raw[key[len("attribute["):-3]] = data.getlist(key)
        elif key.startswith("attribute[") and key.endswith("]"):
            raw[key[len("attribute["):-1]] = data.get(key)
    return raw
