"""The data-staff upload pages, served inside the admin (see ImportRunAdmin.get_urls).

Each view takes `model_admin` (the ImportRunAdmin) for the admin's page context; the work is in importers.uploads.
"""
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from geo_ourcity.limits import body_limit

from . import uploads
from .errors import ImportFailure
from .forms import UploadForm
from .models import ImportCommit, ImportRun
from .permissions import UPLOAD_PERMISSION, may_send_dataset

upload_permission_required = permission_required(UPLOAD_PERMISSION, raise_exception=True)


@never_cache
def upload_allowed(request):
    """The front's question before it reads a body sent to the upload page (nginx `auth_request`, a GET with the
    client's headers and no body; scripts/nginx.conf.template): 204 if the body the client declares fits the cap
    that applies to it (settings.REQUEST_BODY_LIMITS: the large one only for a user who may upload), 403 if not.
    Only the session cookie and the declared framing are read, never a body. A body of unknown length (chunked)
    is taken from a user who may upload only: the front bounds it by the large cap as it reads it."""
    if may_send_dataset(request):
        return HttpResponse(status=204)
    length = request.headers.get("X-Original-Content-Length", "").strip()
    if request.headers.get("X-Original-Transfer-Encoding", "").strip():
        return HttpResponse(status=403)
    limit, _responder = body_limit(reverse("admin:importers_importrun_upload"), request)
    fits = length == "" or (length.isdigit() and int(length) <= limit)
    return HttpResponse(status=204 if fits else 403)


def _context(request, model_admin, title, **extra):
    return {**model_admin.admin_site.each_context(request), "opts": ImportRun._meta, "title": title, **extra}


@upload_permission_required
def upload(request, *, model_admin):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = uploads.upload_dry_run(user=request.user, **form.cleaned_data)
        except ImportFailure as exc:
            messages.error(request, str(exc))
        else:
            return redirect("admin:importers_importrun_report", result.run.pk)
    return render(request, "importers/upload.html", _context(request, model_admin, _("Upload a dataset"), form=form))


@upload_permission_required
def report(request, run_id, *, model_admin):
    run = get_object_or_404(ImportRun.objects.select_related("dataset", "user"), pk=run_id)
    job = ImportCommit.objects.filter(dry_run=run).first()
    progress = _progress(job)
    return render(request, "importers/report.html", _context(
        request, model_admin, _("Import run #%(id)s") % {"id": run.pk}, run=run,
        counts=uploads.run_counts(run), report_text=uploads.run_report_text(run),
        rejects=uploads.run_rejects_head(run), rejects_shown=uploads.REJECTS_SHOWN,
        has_rejects_file=uploads.run_file(run, "rejects") is not None,
        can_commit=job is None and uploads.can_commit(run) and uploads.may_commit(request.user, run),
        job=job, progress=progress, error=run.error.split("\n\n")[0]))


def _progress(job):
    from .tasks import commit_progress

    return commit_progress(job) if job is not None else None


@upload_permission_required
def progress(request, run_id, *, model_admin):
    """The commit's progress as JSON (what the run's page shows while it refreshes): state, stage, rows read and
    loaded, and the commit's own run once it is done."""
    job = get_object_or_404(ImportCommit, dry_run_id=run_id)
    return JsonResponse(_progress(job))


@require_POST
@upload_permission_required
def commit(request, run_id, *, model_admin):
    """Queue the commit of a dry run (importers.tasks.import_commit); the run's page then shows its progress."""
    run = get_object_or_404(ImportRun, pk=run_id)
    try:
        uploads.upload_commit_queue(run=run, user=request.user)
    except PermissionError:
        raise PermissionDenied from None
    except ImportFailure as exc:
        messages.error(request, str(exc))
        return redirect("admin:importers_importrun_report", run.pk)
    messages.success(request, _("Run #%(id)s: the commit is queued.") % {"id": run.pk})
    return redirect("admin:importers_importrun_report", run.pk)


@upload_permission_required
def download(request, run_id, kind, *, model_admin):
    run = get_object_or_404(ImportRun, pk=run_id)
    name = uploads.run_file(run, kind)
    if name is None:
        raise Http404(_("This run has no such file."))
    return FileResponse(uploads.open_run_file(name), as_attachment=True,
                        filename=f"import-run-{run.pk}-{name.rsplit('/', 1)[-1]}")
