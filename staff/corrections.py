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

Accepting a correction imports it, as a `mode: partial` import of the subject's own dataset through
importers.core.run_import, of one row that holds the subject exactly as the registry holds it with the one thing
changed: a facility (a one-row GeoPackage) with the new owner; an admin area (a one-row GeoPackage: its outline,
name, codes and parent) with the authority the complaints ended with as its jurisdiction (the areas spec's
`authority`: a reference to an existing authority, which the import leaves alone); a category with the rule
`department` (a one-row YAML record of the catalogue) with the department of that authority the complaints ended
in. So the correction is what every import is: an ImportRun listed among the import runs (by the data-staff member
who accepted it), the dataset's next Generation (its previous one kept for a rollback), and the re-route of the
open complaints that subject concerns through complaints.services.complaints_reroute.
"""
import datetime
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.handons import AREA, CATEGORY, FACILITY, handon_clusters
from geo_ourcity.languages import translated
from facilities.models import AdminArea, Authority, Department, Facility
from importers.core import run_import, runs_dir
from importers.errors import ImportFailure
from importers.permissions import UPLOAD_PERMISSION
from routing.models import Category

from .models import RegistryCorrection

log = logging.getLogger(__name__)

REASON_MAX = 1000
ACCEPTABLE = (RegistryCorrection.Kind.FACILITY, RegistryCorrection.Kind.AREA, RegistryCorrection.Kind.CATEGORY)
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
        subject, target = SUBJECT_ROW[item.kind](item)  # both still stand: refused now, not on the worker
        if _names_already(item.kind, subject, target):  # stale: an import or an edit corrected it meanwhile
            raise CorrectionError(_("The registry names that authority already."))
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


def _authority(item):
    authority = Authority.objects.active().filter(pk=item.authority_id).first()
    if authority is None:
        raise CorrectionError(_("The authority the complaints ended with has left the registry since."))
    return authority


def _area_row(item):
    area = AdminArea.objects.active().select_related("dataset", "parent").filter(pk=item.subject_id).first()
    if area is None or area.dataset is None:
        raise CorrectionError(_("The area has left the registry since."))
    authority = _authority(item)
    if area.parent_id and area.parent.valid_to is not None:
        raise CorrectionError(_("The area's parent area has left the registry since: correct it by an import of "
                                "its dataset %(dataset)s.") % {"dataset": area.dataset.code})
    return area, authority


def _category_row(item):
    """(category, department): the category, still active, still with the rule `department`; the department of
    the authority the complaints ended with that holds most of them now (else that authority's main one)."""
    category = (Category.objects.select_related("dataset", "department").prefetch_related("facility_types", "attributes")
                .filter(pk=item.subject_id, active=True).first())
    if category is None or category.dataset is None:
        raise CorrectionError(_("The category has left the catalogue since."))
    if category.rule != Category.Rule.DEPARTMENT:
        raise CorrectionError(_("The category no longer routes to a fixed department."))
    authority = _authority(item)
    from django.db.models import Count

    from complaints.models import Complaint

    held = (Complaint.objects.filter(pk__in=item.complaint_ids, department__authority=authority)
            .values("department").annotate(n=Count("id")).order_by("-n", "department").first())
    department = (Department.objects.filter(pk=held["department"]).first() if held else
                  Department.objects.filter(authority=authority, code="main").first())
    if department is None:
        raise CorrectionError(_("The authority the complaints ended with has no department."))
    return category, department


def _names_already(kind, subject, target):
    """Does the registry already say what the correction would? (facility: owner; area: jurisdiction; category:
    its department is one of that authority's)"""
    if kind == FACILITY:
        return subject.owner_id == target.pk
    if kind == AREA:
        return subject.authority_id == target.pk
    return subject.department is not None and subject.department.authority_id == target.authority_id


SUBJECT_ROW = {FACILITY: lambda item: _facility_row(item), AREA: lambda item: _area_row(item),
               CATEGORY: lambda item: _category_row(item)}


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


def area_correction_file(item, folder):
    """The one-row GeoPackage of the area as the registry holds it (its outline as stored WKB, name, codes, the
    parent by its key) and the spec that names the new jurisdiction by reference (spec key `authority`)."""
    import numpy as np
    import pyogrio.raw

    area, authority = _area_row(item)
    names = [KEY, NAME, "correction_okato", "correction_oktmo", "correction_parent"]
    values = [area.source_key, area.name, area.okato, area.oktmo, area.parent.source_key if area.parent_id else ""]
    path = folder / f"correction-{item.pk}.gpkg"
    path.unlink(missing_ok=True)
    pyogrio.raw.write(str(path), geometry=np.array([bytes(area.geom.wkb)], dtype=object),
                      field_data=[np.array([v], dtype=object) for v in values], fields=names,
                      geometry_type="Unknown", crs="EPSG:4326", driver="GPKG", layer="correction")
    spec = {"dataset": area.dataset.code, "target": "areas", "mode": "partial", "key": KEY, "level": area.level_id,
            "name": NAME, "okato": "correction_okato", "oktmo": "correction_oktmo",
            "authority": {"code": authority.code}, "require_in_city": False,
            "description": f"registry correction #{item.pk}: the jurisdiction over area {area.pk} becomes "
                           f"{authority.code} ({item.complaints} complaints handed on)"}
    if area.parent_id:
        spec["parent"] = {"level": area.parent.level_id, "match": "code", "field": "correction_parent"}
    return path, spec


def category_correction_file(item, folder):
    """The one-row YAML record of the category as the catalogue holds it (names, group, keywords, types, deadline,
    questions, ...) with the new department, and its spec."""
    import yaml

    from geo_ourcity.languages import configured_languages
    from importers.spec import language_key

    category, department = _category_row(item)
    languages = configured_languages()

    def per_language(prefix, values):
        return {f"{prefix}_{language_key(lang)}": (values or {}).get(lang, "") for lang in languages}

    record = {"code": category.code, **per_language("name", category.name_i18n),
              **per_language("group", category.group_i18n), **per_language("description", category.description_i18n),
              "keywords": category.keywords, "keywords_en": category.keywords_en,
              "facility_types": sorted(t.code for t in category.facility_types.all()),
              "radius_m": category.radius_m, "deadline_days": category.deadline_days, "rule": category.rule,
              "area_level": category.area_level_id or "", "department": f"{department.authority.code}/{department.code}",
              "moderate_answers": "yes" if category.moderate_answers else "no", "confirm_days": category.confirm_days,
              "attributes": [{"code": a.code, "datatype": a.datatype, "required": a.required, "variable": a.variable,
                              "order": a.order, **per_language("description", a.description_i18n),
                              "datatype_description": a.datatype_description,
                              "values": [{"key": v["key"], **per_language("name", v.get("name_i18n"))}
                                         for v in (a.values or [])]}
                             for a in sorted(category.attributes.all(), key=lambda a: (a.order, a.code))]}
    path = folder / f"correction-{item.pk}.yaml"
    path.write_text(yaml.safe_dump([record], allow_unicode=True, sort_keys=False), encoding="utf-8")
    spec = {"dataset": category.dataset.code, "target": "categories", "mode": "partial", "key": "code",
            **{name: name for name in record if name not in ("department",)},
            "department": {"field": "department"},
            "description": f"registry correction #{item.pk}: the department of category {category.code} becomes "
                           f"{department.authority.code}/{department.code} ({item.complaints} complaints handed on)"}
    return path, spec


CORRECTION_FILE = {FACILITY: facility_correction_file, AREA: area_correction_file, CATEGORY: category_correction_file}


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
    if result.rejects:  # the row was refused (nothing of it written): the correction did not happen
        RegistryCorrection.objects.filter(pk=item.pk, state=RegistryCorrection.State.QUEUED).update(
            state=RegistryCorrection.State.FAILED, import_run=result.run, refreshed_at=timezone.now(),
            note=("import run #%s refused the row: " % result.run.pk + "; ".join(str(r[-1]) for r in result.rejects))[:2000])
        return "failed"
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
    path, spec = CORRECTION_FILE[item.kind](item, folder)
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
