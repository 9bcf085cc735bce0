from pathlib import Path

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from . import uploads


class UploadForm(forms.Form):
    """A dataset file and its mapping spec: one of data/specs or an uploaded spec file."""

    file = forms.FileField(label=_("Dataset file"), help_text=_("GeoJSON, data.mos.ru JSON, GeoPackage, "
                                                               "zipped Shapefile, KML or CSV with lon/lat"))
    spec_name = forms.ChoiceField(label=_("Mapping spec"), required=False)
    spec_file = forms.FileField(label=_("…or upload a mapping spec"), required=False,
                                help_text=_("YAML or JSON, see docs/importing.md"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["spec_name"].choices = [("", "---------")] + [(n, n) for n in uploads.spec_names()]

    def clean_file(self):
        return _checked(self.cleaned_data["file"], uploads.DATASET_EXTENSIONS, settings.IMPORT_UPLOAD_MAX_BYTES)

    def clean_spec_file(self):
        spec_file = self.cleaned_data["spec_file"]
        return spec_file and _checked(spec_file, uploads.SPEC_EXTENSIONS, uploads.SPEC_MAX_BYTES)

    def clean(self):
        data = super().clean()
        if bool(data.get("spec_name")) == bool(data.get("spec_file")) and not self.has_error("spec_file"):
            raise forms.ValidationError(_("Choose a mapping spec or upload one (not both)."))
        return data


def _checked(uploaded, extensions, max_bytes):
    if Path(uploaded.name).suffix.lower() not in extensions:
        raise forms.ValidationError(_("%(name)s: not an accepted file type (accepted: %(types)s)"),
                                    params={"name": uploaded.name, "types": " ".join(extensions)})
    if uploaded.size > max_bytes:
        raise forms.ValidationError(_("%(name)s is %(size)s; the largest accepted is %(max)s"),
                                    params={"name": uploaded.name, "size": filesizeformat(uploaded.size),
                                            "max": filesizeformat(max_bytes)})
    return uploaded
