"""The department staff workspace at /staff/: the ticket list (and its CSV), a ticket's page, and the actions.

Every page and action finds its ticket through staff.selectors (built on complaints.selectors.tickets_for_user):
another department's ticket is a 404 whatever the URL. Every action calls one complaints service.
"""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from complaints.errors import ComplaintNotFound, ComplaintPermissionDenied
from complaints.models import Answer
from complaints.handons import handon_rates
from complaints.selectors import (complaint_history, complaints_nearby, departments_for_user, is_dispatcher,
                                  is_moderator, tickets_for_user)
from complaints.selectors import moderation_queue as moderation_selector
from complaints.services import (ComplaintError, TransitionNotAllowed, complaint_answer, complaint_mark_duplicate,
                                 complaint_recategorise, complaint_take, complaint_transfer)
from complaints.services import answer_needs_moderation, complaint_answer_publish, complaint_answer_return
from complaints.transitions import allowed_actions
from importers.permissions import UPLOAD_PERMISSION
from routing.models import Category
from web.handons import handon_csv_rows, handon_tables
from web.labels import localized, localized_value

from . import selectors
from .export import export_request, ticket_csv_rows
from .forms import AnswerForm, DuplicateForm, RecategoriseForm, TakeForm, TicketFilterForm, TransferForm
from .forms import ReturnAnswerForm
from .models import ExportJob

PAGE_SIZE = 25
# The action forms of a ticket page, by the name of the complaints.transitions action they perform.
ACTION_FORMS = {"take": TakeForm, "answer": AnswerForm, "transfer": TransferForm, "mark_duplicate": DuplicateForm}


def _ticket_or_404(request, pk):
    ticket = selectors.ticket_for_user(request.user, pk)
    if ticket is None:
        raise Http404
    return ticket


def workspace_context(request):
    """What the workspace's header shows: whose tickets these are, and the import page for data staff."""
    user = request.user
    dispatcher = is_dispatcher(user)
    return {"dispatcher": dispatcher,
            "my_departments": [] if dispatcher else list(departments_for_user(user).select_related("authority")),
            "can_import": user.has_perm(UPLOAD_PERMISSION), "moderator": is_moderator(user)}


# --- the ticket list -------------------------------------------------------------------------------------

@login_required
def ticket_list(request):
    form = TicketFilterForm(request.GET)
    tickets = selectors.tickets_filtered(request.user, **form.filters())
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    context = workspace_context(request)
    flags = selectors.ticket_flags(page)
    categories = {c.code: c for c in Category.objects.filter(code__in=[f.service_code for f in flags.values()])}
    context.update(form=form, page=page, sort=form.filters()["sort"],
                   flags={pk: {"check": f, "category": categories.get(f.service_code)} for pk, f in flags.items()},
                   show_department=context["dispatcher"] or len(context["my_departments"]) > 1)
    return render(request, "staff/tickets.html", context)


@login_required
def ticket_csv(request):
    tickets = selectors.tickets_filtered(request.user, **TicketFilterForm(request.GET).filters())
    if tickets.count() > settings.EXPORT_QUEUE_ROWS:  # too big for the request: made on the queue
        export_request(user=request.user, query=request.GET.urlencode(), language=get_language(),
                       base_url=request.build_absolute_uri("/").rstrip("/"))
        messages.success(request, _("The list is long: its CSV is being made. It will be on this page."))
        return redirect("staff:exports")
    tickets = tickets.select_related("department__authority", "category")

    def url(pk):
        return request.build_absolute_uri(reverse("staff:ticket", args=[pk]))

    response = StreamingHttpResponse(ticket_csv_rows(tickets, url), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="tickets-{stamp}.csv"'
    return response


@login_required
def exports(request):
    """The user's own big exports: queued, ready (a download link) or expired."""
    context = workspace_context(request)
    context["exports"] = list(ExportJob.objects.filter(user=request.user)[:50])
    context["any_queued"] = any(e.state == ExportJob.State.QUEUED for e in context["exports"])
    context["keep_hours"] = settings.EXPORT_KEEP_HOURS
    return render(request, "staff/exports.html", context)


@login_required
def export_download(request, pk):
    """An export's file, for the one who asked for it only (anyone else: 404, as for a ticket not theirs)."""
    job = ExportJob.objects.filter(pk=pk, user=request.user, state=ExportJob.State.DONE).first() \
        if 0 < pk < 2 ** 63 else None
    if job is None or not job.file:
        raise Http404
    try:
        handle = default_storage.open(job.file, "rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(handle, as_attachment=True, filename=job.file.rsplit("/", 1)[-1],
                            content_type="text/csv; charset=utf-8")
    patch_cache_control(response, private=True, no_store=True)
    return response


# --- a ticket --------------------------------------------------------------------------------------------

def _render_ticket(request, ticket, bound_form=None, status=200):
    """The ticket's page; `bound_form` is an action form that failed, shown with its messages beside the fields."""
    actions = [a for a in allowed_actions(ticket.state) if a in ACTION_FORMS]
    action_forms = {a: ACTION_FORMS[a]() for a in actions}
    if bound_form is not None:
        action_forms[next(a for a, cls in ACTION_FORMS.items() if isinstance(bound_form, cls))] = bound_form
    context = workspace_context(request)
    context.update(
        t=ticket, decision=ticket.decision, forms=action_forms, attributes=_attributes(ticket),
        contact=", ".join(v for v in (f"{ticket.first_name} {ticket.last_name}".strip(), ticket.email, ticket.phone)
                          if v),
        history=complaint_history(ticket),
        answers=ticket.answers.select_related("author", "department__authority").prefetch_related("photos"),
        photos=ticket.photos.filter(answer__isnull=True).order_by("created_at", "id"),
        checks=ticket.checks.all(),  # issue 10: volunteers' on-site checks
        map_data={**selectors.ticket_map(ticket), "tiles": settings.TILE_URL,
                  "attribution": settings.TILE_ATTRIBUTION},
        nearby=_nearby_originals(request.user, ticket) if "mark_duplicate" in action_forms else [],
    )
    return render(request, "staff/ticket.html", context, status=status)


def _nearby_originals(user, ticket):
    """The open complaints of the ticket's category group near it, among the tickets this user sees: each can be
    the original of a one-click "duplicate of" (complaints.selectors.complaints_nearby)."""
    found = complaints_nearby(ticket.location, category=ticket.category, description=ticket.description,
                              exclude=ticket.pk, among=tickets_for_user(user))
    by_id = tickets_for_user(user).in_bulk([n.complaint_id for n in found])
    return [(by_id[n.complaint_id], round(n.distance_m)) for n in found if n.complaint_id in by_id]


def _attributes(ticket):
    """The answers to the category's extra questions, as (question, answer) in the active language."""
    questions = {a.code: a for a in ticket.category.attributes.all()}
    rows = []
    for code, value in (ticket.attributes or {}).items():
        question = questions.get(code)
        if question is None:
            rows.append((code, value))
            continue
        names = {str(v.get("key")): localized_value(v) for v in question.values or []}
        values = value if isinstance(value, list) else [value]
        rows.append((localized(question, "description"), ", ".join(names.get(str(v), str(v)) for v in values)))
    return rows


@login_required
def ticket_page(request, pk):
    return _render_ticket(request, _ticket_or_404(request, pk))


@login_required
def ticket_photo(request, pk, photo_pk):
    photo = _ticket_or_404(request, pk).photos.filter(pk=photo_pk).first()
    if photo is None:
        raise Http404
    try:
        response = FileResponse(photo.file.open("rb"), content_type=photo.content_type)
    except FileNotFoundError:
        raise Http404 from None
    patch_cache_control(response, private=True, max_age=3600)  # behind a login: never in a shared cache
    return response


def _act(request, pk, form_class, perform, done):
    """Run one action: validate the form, call the service, and answer with a redirect or the page with the
    messages beside the fields (400). Another department's ticket is a 404 before anything else."""
    ticket = _ticket_or_404(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = form_class(request.POST, request.FILES)
    if form.is_valid():
        try:
            perform(ticket, form.cleaned_data)
        except (ComplaintNotFound, ComplaintPermissionDenied):
            raise Http404 from None  # moved to another department meanwhile
        except ComplaintError as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, str(exc))
            elif isinstance(exc, TransitionNotAllowed):  # someone else changed it first: show what it is now
                messages.error(request, str(exc))
                return redirect("staff:ticket", ticket.pk)
            else:
                form.add_error(None, str(exc))
        else:
            messages.success(request, done)
            if selectors.ticket_still_visible(request.user, ticket):
                return redirect("staff:ticket", ticket.pk)
            return redirect("staff:tickets")
    return _render_ticket(request, ticket, bound_form=form, status=400)


@login_required
def take(request, pk):
    return _act(request, pk, TakeForm, lambda t, data: complaint_take(complaint=t, user=request.user),
                _("The ticket is in work."))


@login_required
def answer(request, pk):
    def perform(t, data):
        complaint_answer(complaint=t, user=request.user, text=data["text"], photo=data["photo"])

    done = _("The answer is published.")
    if answer_needs_moderation(_ticket_or_404(request, pk)):  # issue 10: it waits for a moderator first
        done = _("The answer went to moderation: the public sees it once a moderator publishes it.")
    return _act(request, pk, AnswerForm, perform, done)


@login_required
def transfer(request, pk):
    def perform(t, data):
        complaint_transfer(complaint=t, user=request.user, reason=data["reason"], department=data["department"])

    return _act(request, pk, TransferForm, perform, _("The ticket is handed on."))


@login_required
def recategorise(request, pk):
    """Accept a suggested category (the ticket list's flag): a recorded category change that routes it again."""
    ticket = _ticket_or_404(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = RecategoriseForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("staff:tickets")
    reason = form.cleaned_data["reason"] or _("the category suggested from its text and place, accepted")
    try:
        complaint_recategorise(complaint=ticket, user=request.user, category=form.cleaned_data["category"],
                               reason=reason)
    except (ComplaintNotFound, ComplaintPermissionDenied):
        raise Http404 from None
    except ComplaintError as exc:
        messages.error(request, str(exc))
        return redirect("staff:tickets")
    messages.success(request, _("The category is changed and the ticket routed again: № %(n)s.") % {"n": ticket.pk})
    if selectors.ticket_still_visible(request.user, ticket):
        return redirect("staff:ticket", ticket.pk)
    return redirect("staff:tickets")


@login_required
def mark_duplicate(request, pk):
    def perform(t, data):
        complaint_mark_duplicate(complaint=t, user=request.user, of=data["duplicate_of"])

    return _act(request, pk, DuplicateForm, perform, _("The ticket is marked as a duplicate."))


# --- hand-ons measured ---------------------------------------------------------------------------------------
# The forwarding rate and first-contact resolution (complaints.handons.handon_rates): a member of staff sees
# the complaints first routed to their own departments, dispatchers and superusers every department's.

def _handon_scope(user):
    return None if is_dispatcher(user) else list(departments_for_user(user).values_list("pk", flat=True))


@login_required
def handons(request):
    context = workspace_context(request)
    context.update(handon_tables(handon_rates(departments=_handon_scope(request.user))))
    response = render(request, "staff/handons.html", context)
    patch_cache_control(response, private=True, no_store=True)
    return response


@login_required
def handons_csv(request):
    rows = handon_rates(departments=_handon_scope(request.user))
    response = StreamingHttpResponse(handon_csv_rows(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="handons-{stamp}.csv"'
    patch_cache_control(response, private=True, no_store=True)
    return response


# --- issue 10: the moderators' queue ---------------------------------------------------------------------
# Moderators (complaints.selectors.is_moderator: the permission complaints.moderate_answer, e.g. the group "Answer
# moderators") see every department's answers waiting for them; anyone else gets a 404 here, as for a ticket not
# theirs. Publishing and returning are complaints services; the deadline is theirs to leave alone.

def _moderated_or_404(request, pk):
    item = moderation_selector(request.user).filter(pk=pk).first() if 0 < pk < 2 ** 63 else None
    if item is None:
        raise Http404
    return item


def _pending(item):
    return (item.answers.filter(state=Answer.State.MODERATION).select_related("author", "department__authority")
            .prefetch_related("photos").order_by("-created_at", "-id").first())


@login_required
def moderation_queue(request):
    if not is_moderator(request.user):
        raise Http404
    page = Paginator(moderation_selector(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    pending = {a.complaint_id: a for a in Answer.objects.filter(
        complaint__in=[c.pk for c in page], state=Answer.State.MODERATION).order_by("created_at", "id")}
    context = workspace_context(request)
    context.update(page=page, rows=[(c, pending.get(c.pk)) for c in page], now=timezone.now())
    return render(request, "staff/moderation.html", context)


def _render_moderation_item(request, item, return_form=None, status=200):
    context = workspace_context(request)
    context.update(t=item, answer=_pending(item), return_form=return_form or ReturnAnswerForm(),
                   history=complaint_history(item), now=timezone.now(),
                   photos=item.photos.filter(answer__isnull=True).order_by("created_at", "id"))
    return render(request, "staff/moderation_item.html", context, status=status)


@login_required
def moderation_item(request, pk):
    return _render_moderation_item(request, _moderated_or_404(request, pk))


@login_required
def moderation_photo(request, pk, photo_pk):
    photo = _moderated_or_404(request, pk).photos.filter(pk=photo_pk).first()
    if photo is None:
        raise Http404
    try:
        response = FileResponse(photo.file.open("rb"), content_type=photo.content_type)
    except FileNotFoundError:
        raise Http404 from None
    patch_cache_control(response, private=True, max_age=3600)
    return response


def _moderate(request, pk, perform, done, form=None):
    item = _moderated_or_404(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if form is not None and not form.is_valid():
        return _render_moderation_item(request, item, return_form=form, status=400)
    try:
        perform(item)
    except (ComplaintNotFound, ComplaintPermissionDenied):
        raise Http404 from None
    except ComplaintError as exc:
        if form is not None and exc.field in form.fields:
            form.add_error(exc.field, str(exc))
            return _render_moderation_item(request, item, return_form=form, status=400)
        messages.error(request, str(exc))
        return redirect("staff:moderation")
    messages.success(request, done % {"n": item.pk})
    return redirect("staff:moderation")


@login_required
def moderation_publish(request, pk):
    return _moderate(request, pk, lambda item: complaint_answer_publish(complaint=item, user=request.user),
                     _("The answer to № %(n)s is published."))


@login_required
def moderation_return(request, pk):
    form = ReturnAnswerForm(request.POST)

    def perform(item):
        complaint_answer_return(complaint=item, user=request.user, reason=form.cleaned_data["reason"])

    return _moderate(request, pk, perform, _("The answer to № %(n)s went back to the department."), form=form)


@login_required
def check_photo(request, pk, check_pk):
    """A volunteer's check photo, for the staff who may see the ticket (issue 10)."""
    check = _ticket_or_404(request, pk).checks.filter(pk=check_pk).exclude(photo="").first()
    if check is None:
        raise Http404
    try:
        response = FileResponse(check.photo.open("rb"), content_type=check.photo_content_type)
    except FileNotFoundError:
        raise Http404 from None
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, max_age=3600)
    return response
