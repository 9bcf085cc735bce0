"""The mails of hearing back (complaints.notify), one renderer per outbox kind (complaints.outbox `@mail_kind`).

`event`: one public change of a complaint, to its reporter or a follower, in the row's language: what happened
(a text per event kind: routed, taken into work, answered with the answer, handed on with the new department,
marked duplicate with the one to follow, reopened, resolved; any other kind, such as those other modules add, a
generic text with the event's name, its state and its public reason), a link to the complaint (the reporter's
page by tracking code for the reporter; the public page by number for followers: a tracking code is its reporter's
key) and a signed link to unsubscribe (also as List-Unsubscribe, one click). No longer due (cancelled) once the
complaint is hidden, or the address unsubscribed.

Public free text (answers, reasons, explanations) goes through complaints.tracking.redact, as on the site. Every
link is under SITE_URL (the address the site is served on). Subjects are one line whatever the data holds.
"""
from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop, pgettext

from geo_ourcity.languages import content_language, translated

from .models import Alert, Complaint, ComplaintEvent, Follow, SignInLink, State, Subscription
from .notify import (ALERT, ALERT_CONFIRM, ALERT_DIGEST, EVENT, FOLLOW_CONFIRM, SIGNIN, SIGNIN_MAX_AGE,
                     alert_token, follow_token, is_unsubscribed, signin_token, unsubscribe_token)
from .outbox import mail_kind
from .tracking import redact

Kind = ComplaintEvent.Kind

# The state names as the residents' pages say them (the same msgids, so the same translations).
STATE_NAMES = {
    State.NEW: "new", State.ASSIGNED: "assigned", State.IN_PROGRESS: "in progress", State.ANSWERED: "answered",
    State.RESOLVED: "resolved", State.REOPENED: "reopened", State.TRANSFERRED: "transferred",
    State.DUPLICATE: "duplicate", State.HIDDEN: "hidden",
}

# What each kind of change says (the first line of the mail, and the subject's end).
EVENT_TEXTS = {
    Kind.ROUTED: gettext_noop("It was sent to: %(department)s."),
    Kind.STATE: gettext_noop("%(department)s has taken it into work."),
    Kind.ANSWER: gettext_noop("%(department)s has answered it."),
    Kind.TRANSFER: gettext_noop("It was handed on to: %(department)s."),
    Kind.CATEGORY: gettext_noop("Its category was changed; it is with: %(department)s."),
    Kind.DUPLICATE: gettext_noop("It was marked as a duplicate of report No. %(original)s."),
    Kind.REOPENED: gettext_noop("It was reopened and goes back to: %(department)s."),
    Kind.CONFIRMED: gettext_noop("It is resolved."),
}
GENERIC_TEXT = gettext_noop("Its state is now: %(state)s.")
SUBJECT = gettext_noop("Report No. %(number)s: %(what)s")
FOOTER = gettext_noop("""The report: %(url)s

You get this mail because you reported or follow this problem. To stop these mails: %(unsubscribe)s
""")


def _one_line(text):
    return " ".join(str(text).split())[:250]


def _site(path):
    return f"{settings.SITE_URL}{path}"


def complaint_public_url(complaint_id):
    return _site(reverse("web:complaint-number", args=[complaint_id]))


def _message(*, subject, body, to, unsubscribe=None):
    headers = {}
    if unsubscribe:
        headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return EmailMessage(subject=_one_line(subject), body=body, to=[to], headers=headers)


def _category(complaint):
    lang = content_language()
    return translated(complaint.category.name_i18n, lang) or complaint.category.code


def _state_name(state):
    name = STATE_NAMES.get(state)
    return pgettext("complaint state", name) if name else str(state)


def _event_detail(event, complaint):
    """The public text that goes with the change: the answer, the reason, the routing's explanation."""
    lang = content_language()
    if event.kind == Kind.ROUTED and event.decision_id:
        decision = event.decision
        return redact(getattr(decision, f"explanation_{lang}", "") or decision.explanation_ru, lang)
    if event.kind == Kind.DUPLICATE:
        return ""
    return redact(event.reason, lang)


@mail_kind(EVENT)
def event_mail_render(entry):
    complaint = entry.complaint
    if complaint is None or complaint.state == State.HIDDEN or is_unsubscribed(complaint.pk, entry.recipient):
        return None
    event = (ComplaintEvent.objects.filter(pk=entry.context.get("event"), complaint=complaint, public=True)
             .select_related("to_department__authority", "decision").first())
    if event is None:
        return None
    department = event.to_department or complaint.department
    values = {"department": department.display_name, "state": _state_name(event.to_state or complaint.state),
              "original": complaint.duplicate_of_id or ""}
    what = gettext(EVENT_TEXTS.get(event.kind, GENERIC_TEXT)) % values
    reporter = bool(entry.context.get("reporter"))
    url = (_site(reverse("web:complaint", args=[complaint.tracking_code])) if reporter
           else complaint_public_url(complaint.pk))
    unsubscribe = _site(reverse("web:unsubscribe",
                                args=[unsubscribe_token(complaint_id=complaint.pk, email=entry.recipient)]))
    lines = [gettext("Hello,"), "",
             gettext("Report No. %(number)s (%(category)s): %(what)s")
             % {"number": complaint.pk, "category": _category(complaint), "what": what}]
    detail = _event_detail(event, complaint)
    if detail:
        lines += ["", detail]
    if event.kind == Kind.DUPLICATE and complaint.duplicate_of_id:
        lines += ["", gettext("You now follow report No. %(number)s instead: %(url)s")
                  % {"number": complaint.duplicate_of_id, "url": complaint_public_url(complaint.duplicate_of_id)}]
    lines += ["", gettext(FOOTER) % {"url": url, "unsubscribe": unsubscribe}]
    return _message(subject=gettext(SUBJECT) % {"number": complaint.pk, "what": what}, body="\n".join(lines),
                    to=entry.recipient, unsubscribe=unsubscribe)


@mail_kind(FOLLOW_CONFIRM)
def follow_confirm_render(entry):
    follow = Follow.objects.select_related("complaint__category").filter(pk=entry.context.get("follow")).first()
    if follow is None or follow.state != Subscription.PENDING or follow.complaint.state == State.HIDDEN:
        return None
    link = _site(reverse("web:follow-confirm", args=[follow_token(follow)]))
    body = gettext("""Hello,

Someone (we hope you) asked to be told by e-mail of each change of report No. %(number)s (%(category)s).
To confirm, open this link: %(link)s

If it was not you, ignore this mail: nothing will be sent to you.
""") % {"number": follow.complaint_id, "category": _category(follow.complaint), "link": link}
    return _message(subject=gettext("Confirm: follow report No. %(number)s") % {"number": follow.complaint_id},
                    body=body, to=entry.recipient)


def _alert_place(alert):
    if alert.area_id:
        return gettext("in %(area)s") % {"area": alert.area.name}
    if alert.point is not None:
        return gettext("within %(m)d m of %(lat).5f, %(lon).5f") % {"m": alert.radius_m, "lat": alert.point.y,
                                                                    "lon": alert.point.x}
    return gettext("in the group “%(group)s”") % {"group": alert.group}


def _alert(entry):
    return Alert.objects.select_related("area").filter(pk=entry.context.get("alert")).first()


@mail_kind(ALERT_CONFIRM)
def alert_confirm_render(entry):
    alert = _alert(entry)
    if alert is None or alert.state != Subscription.PENDING:
        return None
    link = _site(reverse("web:alert-confirm", args=[alert_token(alert)]))
    body = gettext("""Hello,

Someone (we hope you) asked to be told by e-mail of new problems reported %(place)s.
To confirm, open this link: %(link)s

If it was not you, ignore this mail: nothing will be sent to you.
""") % {"place": _alert_place(alert), "link": link}
    return _message(subject=gettext("Confirm: alerts of new problems"), body=body, to=entry.recipient)


def _complaint_line(complaint):
    return f"No. {complaint.pk} · {_category(complaint)} · {_state_name(complaint.state)}\n" \
           f"  {complaint_public_url(complaint.pk)}"


def _alert_unsubscribe(alert):
    return _site(reverse("web:unsubscribe", args=[unsubscribe_token(alert_id=alert.pk)]))


@mail_kind(ALERT)
def alert_render(entry):
    alert = _alert(entry)
    complaint = entry.complaint
    if alert is None or alert.state != Subscription.ACTIVE or complaint is None or complaint.state == State.HIDDEN:
        return None
    unsubscribe = _alert_unsubscribe(alert)
    description = redact(complaint.description, content_language())
    body = "\n".join([
        gettext("Hello,"), "", gettext("A new problem was reported %(place)s:") % {"place": _alert_place(alert)}, "",
        _complaint_line(complaint), *([f"  {description[:500]}"] if description else []), "",
        gettext("To stop these mails: %(link)s") % {"link": unsubscribe}, ""])
    return _message(subject=gettext("New problem %(place)s: %(category)s")
                    % {"place": _alert_place(alert), "category": _category(complaint)},
                    body=body, to=entry.recipient, unsubscribe=unsubscribe)


@mail_kind(ALERT_DIGEST)
def alert_digest_render(entry):
    alert = _alert(entry)
    if alert is None or alert.state != Subscription.ACTIVE:
        return None
    ids = [i for i in entry.context.get("complaints", []) if isinstance(i, int)]
    complaints = list(Complaint.objects.filter(pk__in=ids).exclude(state=State.HIDDEN)
                      .select_related("category").order_by("pk"))
    if not complaints:
        return None
    unsubscribe = _alert_unsubscribe(alert)
    total = int(entry.context.get("total") or len(complaints))
    body = "\n".join([
        gettext("Hello,"), "",
        gettext("New problems reported %(place)s since the last digest: %(n)d.") % {"place": _alert_place(alert),
                                                                                  "n": total}, "",
        *[_complaint_line(c) for c in complaints], "",
        gettext("To stop these mails: %(link)s") % {"link": unsubscribe}, ""])
    return _message(subject=gettext("New problems %(place)s: %(n)d") % {"place": _alert_place(alert), "n": total},
                    body=body, to=entry.recipient, unsubscribe=unsubscribe)


@mail_kind(SIGNIN)
def signin_render(entry):
    from django.utils import timezone

    link = SignInLink.objects.filter(pk=entry.context.get("link")).first()
    if link is None or link.used_at is not None or link.expires_at <= timezone.now():
        return None
    url = _site(reverse("web:signin-enter", args=[signin_token(link)]))
    body = gettext("""Hello,

To see your reports and what you follow, open this link (it works once, for %(minutes)d minutes):
%(link)s

If you did not ask for it, ignore this mail.
""") % {"minutes": SIGNIN_MAX_AGE.total_seconds() // 60, "link": url}
    return _message(subject=gettext("Your sign-in link"), body=body, to=entry.recipient)
