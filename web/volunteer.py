"""Volunteers' pages (issue 10): a resident approved (in the admin, by staff) as a volunteer for some districts
signs in (as residents do, by a link mailed to the account's address: web/notify_views.py; or with the account's
password), sees the complaints there that were answered or resolved lately and records an on-site check (verdict,
note, photo). The scope is complaints.selectors.complaints_for_volunteer, the one rule: a complaint outside it is
a 404 whatever the URL. Volunteers see what the public sees of a complaint, never its reporter's contact data.
"""
from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
import functools

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from complaints.errors import ComplaintError, ComplaintNotFound
from complaints.models import Answer, Volunteer, VolunteerCheck
from complaints.selectors import complaints_for_volunteer, volunteer_user_for_email
from complaints.services import complaint_volunteer_check
from complaints.tracking import redact

from .labels import STATE_COLOURS, STATE_LABELS, localized
from .notify_views import SESSION_KEY

LOGIN = "web:volunteer-login"


class VolunteerLoginView(auth_views.LoginView):
    template_name = "web/volunteer_login.html"
    redirect_authenticated_user = True
    next_page = "web:volunteer"

    def get_default_redirect_url(self):
        from django.urls import reverse

        return reverse("web:volunteer")


class CheckForm(forms.Form):
    verdict = forms.ChoiceField(label=gettext_lazy("What did you find?"), widget=forms.RadioSelect, choices=[
        (VolunteerCheck.Verdict.FIXED.value, gettext_lazy("It is fixed")),
        (VolunteerCheck.Verdict.NOT_FIXED.value, gettext_lazy("It is not fixed"))])
    note = forms.CharField(label=gettext_lazy("Note (what you saw)"), required=False, max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}))
    photo = forms.FileField(label=gettext_lazy("Photo (JPEG, PNG or WebP)"), required=False,
                            widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp",
                                                                   "class": "form-control"}))


def _volunteer(user):
    return Volunteer.objects.filter(user=user, approved=True, user__is_active=True).prefetch_related("districts").first()


def volunteer_required(view):
    """The volunteer a request acts as (`request.volunteer_user`): the account logged in with its password, or the
    one whose address the resident signed in with by a mailed link (complaints.selectors.volunteer_user_for_email).
    Nobody signed in: to the sign-in page; signed in but no approved volunteer: a 403 page."""
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        candidates = []
        if request.user.is_authenticated:
            candidates.append(request.user)
        email = request.session.get(SESSION_KEY)
        if email:
            candidates.append(volunteer_user_for_email(email))
        if not candidates:
            return redirect_to_login(request.get_full_path(), LOGIN)
        user = next((u for u in candidates if u is not None and _volunteer(u) is not None), None)
        if user is None:
            return _private(render(request, "web/volunteer_none.html", status=403))
        request.volunteer_user = user
        return view(request, *args, **kwargs)
    return wrapped


def _private(response):
    patch_cache_control(response, private=True, no_store=True)
    return response


@volunteer_required
def volunteer_list(request):
    volunteer = _volunteer(request.volunteer_user)
    complaints = list(complaints_for_volunteer(request.volunteer_user)[:200])
    rows = [{"c": c, "category": localized(c.category, "name"), "state": STATE_LABELS.get(c.state, c.state),
             "colour": STATE_COLOURS.get(c.state, "#000")} for c in complaints]
    return _private(render(request, "web/volunteer_list.html", {
        "rows": rows, "districts": sorted(d.name for d in volunteer.districts.all())}))


def _complaint_or_404(request, pk):
    complaint = (complaints_for_volunteer(request.volunteer_user).filter(pk=pk)
                 .prefetch_related("answers__photos", "photos").first() if 0 < pk < 2 ** 63 else None)
    if complaint is None:
        raise Http404("no such complaint")
    return complaint


def _render_complaint(request, complaint, form=None, status=200):
    answers = [a for a in complaint.answers.all() if a.state == Answer.State.PUBLISHED]
    for a in answers:
        a.public_text = redact(a.text)
    return _private(render(request, "web/volunteer_complaint.html", {
        "c": complaint, "category_name": localized(complaint.category, "name"),
        "state_label": STATE_LABELS.get(complaint.state, complaint.state),
        "state_colour": STATE_COLOURS.get(complaint.state, "#000"),
        "description": redact(complaint.description), "answers": answers,
        "photos": [p for p in complaint.photos.all() if p.answer_id is None],
        "form": form or CheckForm()}, status=status))


@volunteer_required
def volunteer_complaint(request, pk):
    return _render_complaint(request, _complaint_or_404(request, pk))


@volunteer_required
def volunteer_check(request, pk):
    complaint = _complaint_or_404(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = CheckForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            complaint_volunteer_check(complaint_id=complaint.pk, user=request.volunteer_user, verdict=data["verdict"],
                                      note=data["note"], photo=data["photo"])
        except ComplaintNotFound:
            raise Http404("no such complaint") from None
        except ComplaintError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Thank you: your check is recorded.") if data["verdict"] == "fixed" else
                             _("Thank you: the complaint is reopened and goes back to its department."))
            return redirect("web:volunteer")
    return _render_complaint(request, complaint, form=form, status=400)
