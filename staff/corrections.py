"""The registry corrected by hand-ons (issue 11 §4): the data-staff queue of proposed corrections.

    corrections_find()                        the scheduler's pass (staff.tasks.corrections_find), or on demand
    correction_accept(correction=, user=)     queue the correction's import (staff.tasks.correction_apply)
    correction_dismiss(correction=, user=, reason=)
    correction_apply(correction_id)           the worker: the import through the importers' pipeline

What a hand-on cluster is, complaints says (complaints.handons). A cluster of at least
REGISTRY_CORRECTION_HANDONS complaints handed on in the last REGISTRY_CORRECTION_WINDOW_DAYS days becomes a pending
RegistryCorrection with the reasons staff gave and the authority the complaints ended with. A dismissed one stays
out until as many complaints again are handed on after the dismissal. A pending one that no longer qualifies (the
registry was corrected by an import meanwhile, complaints were handed back) becomes `outdated`.

Accepting a facility's correction imports it: a one-row GeoPackage of the facility as the registry holds it, with
the new owner, as a `mode: partial` import of the facility's own dataset through importers.core.run_import. So
the correction is what every import is: an ImportRun listed among the import runs (by the data-staff member who
accepted it), the dataset's next Generation (its previous one kept for a rollback), and the re-route of the open
complaints around that facility through complaints.services.complaints_reroute. An area's jurisdiction and a
category's department have no partial-update path in the import pipeline that leaves the authority itself alone
(an area import's `jurisdiction` rewrites the authority it names): those are shown and can be dismissed, and an
accept says to correct them by an import of their dataset.
"""
import datetime
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.handons import AREA, CATEGORY, FACILITY, handon_clusters
from geo_ourcity.languages import translated
from facilities.models import AdminArea, Authority, Facility
from importers.core import run_import, runs_dir
from importers.errors import ImportFailure
from importers.permissions import UPLOAD_PERMISSION
from routing.models import Category

from .models import RegistryCorrection

log = logging.getLogger(__name__)

REASON_MAX = 1000
ACCEPTABLE = (RegistryCorrection.Kind.FACILITY,)
Open = (RegistryCorrection.State.PENDING, RegistryCorrection.State.QUEUED)


class CorrectionError(Exception):
    """A decision that can not be taken (the message says why, for the person who tried)."""


class CorrectionNotAllowed(CorrectionError):
    pass


def may_correct(user):
    """Data staff: those who may import datasets (importers.permissions), since an accept is an import."""
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(UPLOAD_PERMISSION))


def corrections_pending():
    """The queue as data staff see it: pending and queued first, then the decided ones, newest first."""
    return RegistryCorrection.objects.select_related("authority", "registry_authority", "decided_by", "import_run")


# --- finding --------------------------------------------------------------------------------------------------

def corrections_find(*, now=None):
    """Turn the hand-on clusters into pending corrections; returns counts {"clusters", "new", "updated", "outdated"}.

    One pass at a time (a transaction-scoped advisory lock: nothing outlives the transaction, so it holds behind a
    transaction-mode pooler)."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=settings.REGISTRY_CORRECTION_WINDOW_DAYS)
    threshold = settings.REGISTRY_CORRECTION_HANDONS
    counts = {"clusters": 0, "new": 0, "updated": 0, "outdated": 0}
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('geo_ourcity.registry_corrections'))")
        clusters = handon_clusters(since=since, threshold=threshold)
        open_items = {(c.kind, c.subject_id, c.authority_id): c
                      for c in RegistryCorrection.objects.select_for_update().filter(state__in=Open)}
        dismissed = {}
        for kind, subject, authority, at in (RegistryCorrection.objects.filter(state=RegistryCorrection.State.DISMISSED)
                                             .values_list("kind", "subject_id", "authority_id", "decided_at")):
            key = (kind, subject, authority)
            dismissed[key] = max(at, dismissed.get(key, at))
        seen = set()
        for cluster in clusters:
            key = (cluster.kind, cluster.subject_id, cluster.ended_with_id)
            ids, reasons = cluster.complaint_ids, cluster.reasons
            if key in dismissed:  # only what was handed on after the dismissal counts again
                after = [i for i, at in enumerate(cluster.handed_at) if at > dismissed[key]]
                if len(after) < threshold:
                    continue
                ids, reasons = [ids[i] for i in after], [reasons[i] for i in after]
            counts["clusters"] += 1
            seen.add(key)
            fields = {"complaints": len(ids), "complaint_ids": ids,
                      "reasons": [r for r in reasons if r][:settings.REGISTRY_CORRECTION_REASONS],
                      "registry_authority_id": cluster.registry_authority_id}
            item = open_items.get(key)
            if item is None:
                label, dataset = _describe(cluster.kind, cluster.subject_id)
                RegistryCorrection.objects.create(kind=cluster.kind, subject_id=cluster.subject_id,
                                                  authority_id=cluster.ended_with_id, subject_label=label,
                                                  dataset_code=dataset, **fields)
                counts["new"] += 1
            elif item.state == RegistryCorrection.State.PENDING and any(
                    getattr(item, name) != value for name, value in fields.items()):
                for name, value in fields.items():
                    setattr(item, name, value)
                item.save()
                counts["updated"] += 1
        for key, item in open_items.items():
            if key not in seen and item.state == RegistryCorrection.State.PENDING:
                item.state = RegistryCorrection.State.OUTDATED
                item.note = "no longer proposed: fewer hand-ons in the window, or the registry names that authority"
                item.save(update_fields=["state", "note", "refreshed_at"])
                counts["outdated"] += 1
    return counts


def _describe(kind, subject_id):
    """(label, dataset code) of a subject, as it is called now."""
    if kind == FACILITY:
        f = Facility.objects.select_related("dataset", "type").filter(pk=subject_id).first()
        if f is None:
            return f"facility #{subject_id}", ""
        return (f"{f.name or f.type.name or f.type.code} — {f.address}" if f.address else f.name or str(f))[:600], f.dataset.code
    if kind == AREA:
        a = AdminArea.objects.select_related("dataset").filter(pk=subject_id).first()
        return (a.name, a.dataset.code if a.dataset else "") if a else (f"area #{subject_id}", "")
    if kind == CATEGORY:
        c = Category.objects.select_related("dataset").filter(pk=subject_id).first()
        return (f"{c.code}: {translated(c.name_i18n)}", c.dataset.code if c.dataset else "") if c else (f"category #{subject_id}", "")
    raise ValueError(kind)


# --- deciding -------------------------------------------------------------------------------------------------

def _lock(user, correction):
    if not may_correct(user):
        raise CorrectionNotAllowed(_("Only data staff decide registry corrections."))
    locked = RegistryCorrection.objects.select_for_update().filter(pk=getattr(correction, "pk", correction)).first()
    if locked is None:
        raise CorrectionError(_("The correction does not exist."))
    if locked.state != RegistryCorrection.State.PENDING:
        raise CorrectionError(_("This correction has been decided already (%(state)s).")
                              % {"state": locked.get_state_display()})
    return locked


def correction_accept(*, correction, user):
    """Accept: the correction is recorded as accepted by `user` and its import queued (staff.tasks.correction_apply,
    sent once this commits)."""
    from .tasks import correction_apply_task

    with transaction.atomic():
        item = _lock(user, correction)
        if item.kind not in ACCEPTABLE:
            raise CorrectionError(_("A correction of this kind can not be imported from here: correct the "
                                    "dataset %(dataset)s by an import, or dismiss it.") % {"dataset": item.dataset_code})
        if item.kind == FACILITY:
            _facility_row(item)  # the facility still stands: refused now, not on the worker
        item.state, item.decided_by, item.decided_at = RegistryCorrection.State.QUEUED, user, timezone.now()
        item.save(update_fields=["state", "decided_by", "decided_at", "refreshed_at"])
        transaction.on_commit(lambda: correction_apply_task.delay(item.pk), robust=True)
    return item


def correction_dismiss(*, correction, user, reason):
    """Dismiss, with the reason (required)."""
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise CorrectionError(_("Say why the correction is dismissed."))
    if len(reason) > REASON_MAX or any(ord(ch) < 32 for ch in reason):
        raise CorrectionError(_("The reason must be at most %(n)d characters of text.") % {"n": REASON_MAX})
    with transaction.atomic():
        item = _lock(user, correction)
        item.state, item.decided_by, item.decided_at = RegistryCorrection.State.DISMISSED, user, timezone.now()
        item.note = reason
        item.save(update_fields=["state", "decided_by", "decided_at", "note", "refreshed_at"])
    return item


# --- applying (on the worker) ------------------------------------------------------------------------------------

def _facility_row(item):
    facility = (Facility.objects.active().select_related("dataset", "type", "owner")
                .filter(pk=item.subject_id).first())
    if facility is None:
        raise CorrectionError(_("The facility has left the registry since."))
    authority = Authority.objects.active().filter(pk=item.authority_id).first()
    if authority is None:
        raise CorrectionError(_("The authority the complaints ended with has left the registry since."))
    return facility, authority


# The correction file's own columns (attrs keep their own names, as the facility holds them).
KEY, NAME, ADDRESS = "correction_key", "correction_name", "correction_address"


def facility_correction_file(item, folder):
    """Write the one-row GeoPackage and return (path, spec): the facility exactly as the registry holds it (its
    geometry as stored WKB, its type, name, address and attributes) with the new owner."""
    import numpy as np
    import pyogrio.raw

    facility, authority = _facility_row(item)
    attrs = {str(k): ("" if v is None else str(v)) for k, v in (facility.attrs or {}).items()}
    if set(attrs) & {KEY, NAME, ADDRESS}:
        raise CorrectionError("the facility's attributes use a name the correction file needs")
    names = [KEY, NAME, ADDRESS, *attrs]
    values = [facility.source_key, facility.name, facility.address, *attrs.values()]
    path = folder / f"correction-{item.pk}.gpkg"
    path.unlink(missing_ok=True)
    pyogrio.raw.write(str(path), geometry=np.array([bytes(facility.geom.wkb)], dtype=object),
                      field_data=[np.array([v], dtype=object) for v in values], fields=names,
                      geometry_type="Unknown", crs="EPSG:4326", driver="GPKG", layer="correction")
    spec = {"dataset": facility.dataset.code, "target": "facilities", "mode": "partial", "key": KEY,
            "type": {"value": facility.type.code}, "owner": {"code": authority.code},
            "name": NAME, "address": ADDRESS, "attrs": list(attrs), "require_in_city": False,
            "description": f"registry correction #{item.pk}: the owner of facility {facility.pk} becomes "
                           f"{authority.code} ({item.complaints} complaints handed on)"}
    return path, spec


def correction_apply(correction_id):
    """Import a queued correction (the worker). Idempotent: the import is a partial update, so running it again
    (a task retried after a killed worker) finds the owner set and changes nothing; a decided row is left alone."""
    item = RegistryCorrection.objects.select_related("decided_by").filter(pk=correction_id).first()
    if item is None or item.state != RegistryCorrection.State.QUEUED:
        return "not due"
    try:
        result = correction_import(item)
    except (CorrectionError, ImportFailure) as exc:
        RegistryCorrection.objects.filter(pk=item.pk, state=RegistryCorrection.State.QUEUED).update(
            state=RegistryCorrection.State.FAILED, note=str(exc)[:2000], refreshed_at=timezone.now())
        return "failed"
    counts = result.counts
    note = (f"import run #{result.run.pk}: updated {counts.get('updated', 0)}, unchanged {counts.get('unchanged', 0)}"
            f", re-routed {counts.get('rerouted', 0)}")
    if result.notes:
        note += "; " + "; ".join(result.notes)
    RegistryCorrection.objects.filter(pk=item.pk, state=RegistryCorrection.State.QUEUED).update(
        state=RegistryCorrection.State.ACCEPTED, import_run=result.run, rerouted=counts.get("rerouted"), note=note,
        refreshed_at=timezone.now())
    return "accepted"


def correction_import(item):
    """The correction's import (importers.core.run_import, committed by whoever accepted it); its ImportResult,
    with the re-route's result (bench/correction_bench.py times both)."""
    folder = runs_dir() / "corrections"
    folder.mkdir(parents=True, exist_ok=True)
    path, spec = facility_correction_file(item, folder)
    return run_import(path, spec, commit=True, user=item.decided_by, original_name=path.name,
                      spec_name=f"registry correction #{item.pk}")


def corrections_requeue(older_than_seconds=60):
    """Queued corrections whose task was lost (a broker down at commit): queued again. Returns how many."""
    from .tasks import correction_apply_task

    old = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
    ids = list(RegistryCorrection.objects.filter(state=RegistryCorrection.State.QUEUED, decided_at__lt=old)
               .values_list("pk", flat=True))
    for pk in ids:
        correction_apply_task.delay(pk)
    return len(ids)
