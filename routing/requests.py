"""Re-routes on the task queue: asked for where the change happens, done by a worker, coalesced.

    reroute_request(reason=..., everything=... | facilities=[ids], areas=..., categories=...)   the asker
    reroute_batch()                                                                            the worker

A request is a RerouteRequest row written in the asker's transaction (so a rollback asks for nothing and a crash
after the commit loses nothing); once it commits, a worker is asked to run the pending requests after
REROUTE_COALESCE_SECONDS (complaints.tasks.reroute_run, by name: routing imports nothing of complaints). The worker
takes every pending request at once (FOR UPDATE SKIP LOCKED), merges them into one re-route (the union of what
they touched, or everything if one of them says so), applies it and marks them done in that one transaction: a
worker killed mid-way leaves them pending and the complaints as they were, and the next run does it once.
"""
import contextlib
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import RerouteRequest

TASK = "complaints.tasks.reroute_run"
BATCH_MAX = 1000


def reroute_request(*, reason, everything=False, facilities=None, areas=None, categories=None):
    """Ask for a re-route of the open complaints (see complaints.services.complaints_reroute for what the ids mean;
    none and not `everything`: who answers is decided again, no search). One INSERT in the caller's transaction."""
    request = RerouteRequest.objects.create(
        reason=reason[:300], everything=everything, facilities=_ids(facilities), areas=_ids(areas),
        categories=_ids(categories))
    transaction.on_commit(reroute_wake, robust=True)
    return request


def reroute_wake():
    """Ask a worker to run the pending re-routes, after the coalescing delay (a lost message is found by the
    scheduler's sweep)."""
    from celery import current_app

    current_app.send_task(TASK, countdown=settings.REROUTE_COALESCE_SECONDS)


def _ids(ids):
    return None if ids is None else sorted({int(i) for i in ids})


@dataclass
class Batch:
    """The pending requests taken together: what to re-route (`kwargs` for the re-route) and why."""

    requests: list
    reason: str
    kwargs: dict
    result: object = None
    extra: dict = field(default_factory=dict)


def _merge(requests):
    if any(r.everything for r in requests):
        kwargs = {}
    else:
        kwargs = {"spatial": False}
        for kind in ("facilities", "areas", "categories"):
            lists = [getattr(r, kind) for r in requests if getattr(r, kind) is not None]
            if lists:
                kwargs[kind] = sorted({i for ids in lists for i in ids})
    reasons = list(dict.fromkeys(r.reason for r in requests))
    reason = reasons[0] if len(reasons) == 1 else f"{reasons[0]} (+{len(requests) - 1} more)"
    return Batch(requests=requests, reason=reason, kwargs=kwargs)


@contextlib.contextmanager
def reroute_batch():
    """The pending requests, locked and merged (None if there are none), inside one transaction: the caller
    applies the re-route (sets `batch.result`, a RerouteResult) in it; they are marked done when it leaves."""
    with transaction.atomic():
        requests = list(RerouteRequest.objects.select_for_update(skip_locked=True)
                        .filter(state=RerouteRequest.State.PENDING).order_by("id")[:BATCH_MAX])
        if not requests:
            yield None
            return
        batch = _merge(requests)
        yield batch
        result = batch.result
        RerouteRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
            state=RerouteRequest.State.DONE, done_at=timezone.now(), batch=requests[0].pk,
            considered=getattr(result, "considered", None), moved=getattr(result, "moved", None))


def reroute_failed(error):
    """The run failed (its transaction rolled back): count the attempt on the pending requests, keep the error."""
    RerouteRequest.objects.filter(state=RerouteRequest.State.PENDING).update(error=str(error)[:1000],
                                                                             attempts=F("attempts") + 1)


def reroute_pending_count():
    return RerouteRequest.objects.filter(state=RerouteRequest.State.PENDING).count()
