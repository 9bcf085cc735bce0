"""The data-staff upload pages, served inside the admin (see ImportRunAdmin.get_urls).

Each view takes `model_admin` (the ImportRunAdmin) for the admin's page context; the work is in importers.uploads.
"""
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import uploads
from .errors import ImportFailure
from .forms import UploadForm
from .models import ImportRun
from .permissions import UPLOAD_PERMISSION

upload_permission_required = permission_required(UPLOAD_PERMISSION, raise_exception=True)


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
    return render(request, "importers/report.html", _context(
        request, model_admin, _("Import run #%(id)s") % {"id": run.pk}, run=run,
        counts=uploads.run_counts(run), report_text=uploads.run_report_text(run),
        rejects=uploads.run_rejects_head(run), rejects_shown=uploads.REJECTS_SHOWN,
        has_rejects_file=uploads.run_file(run, "rejects") is not None, can_commit=uploads.can_commit(run),
        error=run.error.split("\n\n")[0]))


@require_POST
@upload_permission_required
def commit(request, run_id, *, model_admin):
    run = get_object_or_404(ImportRun, pk=run_id)
    try:
        result = uploads.upload_commit(run=run, user=request.user)
    except ImportFailure as exc:
        messages.error(request, str(exc))
        return redirect("admin:importers_importrun_report", run.pk)
    messages.success(request, _("Run #%(id)s: %(status)s.") % {"id": result.run.pk,
                                                               "status": result.run.get_status_display()})
    return redirect("admin:importers_importrun_report", result.run.pk)


@upload_permission_required
def download(request, run_id, kind, *, model_admin):
    run = get_object_or_404(ImportRun, pk=run_id)
    path = uploads.run_file(run, kind)
    if path is None:
        raise Http404(_("This run has no such file."))
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"import-run-{run.pk}-{path.name}")
