"""The data-staff queue of registry corrections at /staff/registry/ (staff.corrections): the list, one
correction's page (its reasons, the complaints, the authority they ended with), and the decisions. For data
staff only (those who may import): anyone else logged in gets 403, whatever the URL."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from complaints.models import Complaint

from . import corrections
from .models import RegistryCorrection
from .tasks import corrections_find
from .views import workspace_context

STATES = [s.value for s in RegistryCorrection.State]


def _data_staff(view):
    def wrapped(request, *args, **kwargs):
        if not corrections.may_correct(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return login_required(wrapped)


def _item_or_404(pk):
    item = corrections.corrections_pending().filter(pk=pk).first() if 0 < pk < 2 ** 63 else None
    if item is None:
        raise Http404
    return item


@_data_staff
def registry_queue(request):
    state = request.GET.get("state", RegistryCorrection.State.PENDING)
    items = corrections.corrections_pending()
    if state in STATES:
        items = items.filter(state=state)
    context = workspace_context(request)
    context.update(items=list(items[:200]), state=state, states=RegistryCorrection.State.choices)
    return render(request, "staff/registry.html", context)


@_data_staff
def registry_item(request, pk):
    item = _item_or_404(pk)
    context = workspace_context(request)
    context.update(item=item, complaints=list(Complaint.objects.filter(pk__in=item.complaint_ids)
                                              .select_related("category", "department__authority")
                                              .order_by("-submitted_at")[:100]),
                   acceptable=item.kind in corrections.ACCEPTABLE)
    return render(request, "staff/registry_item.html", context)


def _decide(request, pk, perform, done):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    item = _item_or_404(pk)
    try:
        perform(item)
    except corrections.CorrectionNotAllowed:
        raise PermissionDenied from None
    except corrections.CorrectionError as exc:
        messages.error(request, str(exc))
        return redirect("staff:registry-item", item.pk)
    messages.success(request, done)
    return redirect("staff:registry-item", item.pk)


@_data_staff
def registry_accept(request, pk):
    return _decide(request, pk, lambda item: corrections.correction_accept(correction=item, user=request.user),
                   _("Accepted: the correction is being imported."))


@_data_staff
def registry_dismiss(request, pk):
    return _decide(request, pk, lambda item: corrections.correction_dismiss(
        correction=item, user=request.user, reason=request.POST.get("reason", "")), _("Dismissed."))


@_data_staff
def registry_find(request):
    """Look for corrections now (on the queue, as the scheduler does)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    corrections_find.delay()
    messages.success(request, _("The hand-ons are being looked at; reload in a moment."))
    return redirect("staff:registry")
