"""The residents' pages of hearing back (complaints.notify): a complaint's public page by number, following and
supporting it, area alerts, unsubscribing, and the password-less account ("my complaints", "my follows").

Everything that mails an address is limited per client address and per address (geo_ourcity.limits, one round
trip), and answers the same whatever the address: nothing tells whether an address follows, reported or exists.
Links that change something on a GET are only the double opt-in confirmations; unsubscribing and signing in
take a POST (a mail scanner that opens links changes nothing), the unsubscribe POST also without a CSRF token
(RFC 8058 one-click: the signed link is the proof).
"""
from django.conf import settings
from django.contrib import messages
from django.contrib.gis.geos import Point
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from complaints.models import Alert
from complaints.notify import (LinkInvalid, alert_confirm, alert_request, follow_confirm, follow_request,
                               followers_count, normal_email, resident_alerts, resident_complaints, resident_follows,
                               signin_check, signin_request, signin_use, support_add, support_count, unsubscribe,
                               unsubscribe_token)
from complaints.selectors import complaint_history, complaints_public, volunteer_user_for_email
from complaints.services import ComplaintError
from geo_ourcity.languages import translated
from geo_ourcity.limits import Limit, client_key, rate_limits

from . import selectors
from .labels import localized
from .limits import too_many_requests

SESSION_KEY = "resident_email"


def _limited(request, group, email=None):
    """None, or the 429 answer: counted per client, and per address when one is given."""
    from complaints.notify import address_key

    limits = [Limit(group, settings.LIMIT_FOLLOWS, client_key(request))]
    if email:
        limits.append(Limit("mail-address", settings.LIMIT_MAILS_PER_ADDRESS, address_key(email)))
    waits = [w for w in rate_limits(request, limits) if w is not None]
    return too_many_requests(request, max(waits)) if waits else None


def _public_complaint(pk):
    complaint = (complaints_public().select_related("decision", "area")
                 .prefetch_related("answers__photos", "photos").filter(pk=pk).first())
    if complaint is None:
        raise Http404("no such complaint")
    return complaint


def follow_context(complaint):
    """What web/_follow.html shows: the follow form's target, the counts."""
    return {"follow_url": reverse("web:complaint-follow", args=[complaint.pk]),
            "support_url": reverse("web:complaint-support", args=[complaint.pk]),
            "feed_url": reverse("web:feed-complaint", args=[complaint.pk]),
            "support_count": support_count(complaint), "followers_count": followers_count(complaint)}


def complaint_number_page(request, pk):
    """A complaint's public page by its number (what followers, feeds and alerts link to): what the tracking-code
    page shows, without the code and without the confirmation forms."""
    from .views import _complaint_context, _event_row

    complaint = _public_complaint(pk)
    events = [_event_row(e) for e in complaint_history(complaint, public_only=True)]
    return render(request, "web/complaint.html", {
        "c": complaint, "events": events, "public_page": True, "can_confirm": False, "can_deny": False,
        **_complaint_context(complaint), **follow_context(complaint)})


def _back(complaint, request):
    back = request.POST.get("back", "")
    if back == "code" and request.POST.get("code") == complaint.tracking_code:
        return redirect("web:complaint", complaint.tracking_code)
    return redirect("web:complaint-number", complaint.pk)


@require_POST
def complaint_follow(request, pk):
    complaint = _public_complaint(pk)
    email = request.POST.get("email", "")
    try:
        email = normal_email(email)
    except ComplaintError as exc:
        messages.error(request, str(exc))
        return _back(complaint, request)
    refused = _limited(request, "follow", email)
    if refused:
        return refused
    follow_request(complaint=complaint, email=email, language=get_language())
    messages.success(request, _("Check your mail: open the link we sent to confirm that you follow this report."))
    return _back(complaint, request)


@require_POST
def complaint_support(request, pk):
    complaint = _public_complaint(pk)
    waits = rate_limits(request, [Limit("support", settings.LIMIT_SUPPORTS, client_key(request))])
    if waits[0] is not None:
        return too_many_requests(request, waits[0])
    support_add(complaint=complaint, client=client_key(request))
    messages.success(request, _("Thank you: your “me too” is counted."))
    return _back(complaint, request)


def follow_confirm_view(request, token):
    try:
        follow = follow_confirm(token)
    except LinkInvalid as exc:
        return render(request, "web/notify_message.html", {"message": str(exc)}, status=400)
    messages.success(request, _("You follow this report now: each change of it will be mailed to you."))
    return redirect("web:complaint-number", follow.complaint_id)


@csrf_exempt  # RFC 8058 one-click unsubscription from a mail client: the signed link is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token):
    if request.method == "GET":
        return render(request, "web/notify_message.html", {"message": _("Stop these mails?"), "confirm_post": True,
                                                           "button": _("Unsubscribe")})
    try:
        unsubscribe(token)
    except LinkInvalid as exc:
        return render(request, "web/notify_message.html", {"message": str(exc)}, status=400)
    return render(request, "web/notify_message.html", {"message": _("Done: these mails will not be sent to you "
                                                                    "any more.")})


# --- area alerts ------------------------------------------------------------------------------------------

def _float(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


@require_http_methods(["GET", "POST"])
def alerts_page(request):
    groups = sorted({(c.group_key, translated(c.group_i18n)) for c in selectors.active_categories()})
    context = {"districts": selectors.districts_for_filter(), "groups": groups, "errors": {},
               "frequencies": Alert.Frequency.choices}
    if request.method == "GET":
        return render(request, "web/alerts.html", context)
    data, kwargs = request.POST, {}
    errors = context["errors"]
    where = data.get("where", "")
    if where == "district":
        area = selectors.districts_for_filter().filter(pk=data.get("district") or 0).first() \
            if (data.get("district") or "").isdigit() else None
        if area is None:
            errors["district"] = _("Choose a district.")
        kwargs["area"] = area
    elif where == "point":
        lon, lat = _float(data.get("lon")), _float(data.get("lat"))
        if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
            errors["point"] = _("Give a longitude and a latitude.")
        else:
            kwargs["point"] = Point(lon, lat, srid=4326)
        kwargs["radius_m"] = int(_float(data.get("radius_m")) or 0)
    elif where == "group":
        if data.get("group") not in {g for g, _label in groups}:
            errors["group"] = _("Choose a category group.")
        kwargs["group"] = data.get("group", "")
    else:
        errors["where"] = _("Choose one: a district, a point with a radius, or a category group.")
    email = data.get("email", "")
    if not errors:
        try:
            email = normal_email(email)
        except ComplaintError as exc:
            errors["email"] = str(exc)
    if not errors:
        refused = _limited(request, "alert", email)
        if refused:
            return refused
        try:
            alert_request(email=email, language=get_language(), frequency=data.get("frequency", ""), **kwargs)
        except ComplaintError as exc:
            errors[exc.field or "where"] = str(exc)
    if errors:
        return render(request, "web/alerts.html", context, status=400)
    return render(request, "web/notify_message.html", {
        "message": _("Check your mail: open the link we sent to confirm the alert.")})


def alert_confirm_view(request, token):
    try:
        alert_confirm(token)
    except LinkInvalid as exc:
        return render(request, "web/notify_message.html", {"message": str(exc)}, status=400)
    return render(request, "web/notify_message.html", {"message": _("The alert is on: new problems will be mailed "
                                                                    "to you.")})


# --- the resident's account (no password: a sign-in link by mail) -------------------------------------------

@require_http_methods(["GET", "POST"])
def account_page(request):
    email = request.session.get(SESSION_KEY)
    if request.method == "POST":
        try:
            address = normal_email(request.POST.get("email", ""))
        except ComplaintError as exc:
            return render(request, "web/account.html", {"error": str(exc)}, status=400)
        refused = _limited(request, "signin", address)
        if refused:
            return refused
        signin_request(email=address, language=get_language())
        # The same answer for every address: whether it reported or follows anything is not told here.
        return render(request, "web/notify_message.html", {
            "message": _("If this address is right, a sign-in link is on its way to it. It works once, for 30 "
                         "minutes.")})
    if not email:
        return render(request, "web/account.html", {})
    complaints, follows, alerts = (list(resident_complaints(email)[:200]), list(resident_follows(email)[:200]),
                                   list(resident_alerts(email)))
    for c in complaints:
        c.category_name = localized(c.category, "name")
    for f in follows:
        f.category_name = localized(f.complaint.category, "name")
        f.unsubscribe_token = unsubscribe_token(complaint_id=f.complaint_id, email=f.email)
    for a in alerts:
        a.unsubscribe_token = unsubscribe_token(alert_id=a.pk)
    response = render(request, "web/account.html", {
        "email": email, "complaints": complaints, "follows": follows, "alerts": alerts,
        "volunteer": volunteer_user_for_email(email) is not None})
    patch_cache_control(response, private=True, no_store=True)
    return response


@require_http_methods(["GET", "POST"])
def signin_enter(request, token):
    """GET: a button (a mail scanner opening the link does not use it up); POST: use it and sign in."""
    try:
        email = signin_use(token) if request.method == "POST" else signin_check(token)
    except LinkInvalid as exc:
        return render(request, "web/notify_message.html", {"message": str(exc)}, status=400)
    if request.method == "GET":
        return render(request, "web/notify_message.html", {"message": _("Sign in as %(email)s?") % {"email": email},
                                                           "confirm_post": True, "button": _("Sign in")})
    request.session.cycle_key()
    request.session[SESSION_KEY] = email
    return redirect("web:account")


@require_POST
def signout(request):
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()
    return redirect("web:account")
