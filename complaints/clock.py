"""The complaints' clock: what "now" is for the lifecycle's writes (complaints.services, the history's times).

Always the real time, except inside `clock.at(moment)`, the one narrow way to write a history back-dated: the demo
city's year of history (complaints/management/commands/load_demo_complaints.py) files, answers, confirms and hands
on complaints at the times it draws, through the same services and the same rules (state machine, permissions,
deadlines in working days from the filing time). Nothing a request or a worker runs sets it; it is per thread and
per task (a context variable), so it never leaks into another request.
"""
import contextlib
import contextvars

from django.utils import timezone

_moment = contextvars.ContextVar("complaints_clock", default=None)


def now():
    """The current time, or the moment set by `at()` around this call."""
    moment = _moment.get()
    return timezone.now() if moment is None else moment


@contextlib.contextmanager
def at(moment):
    """Let the services write as if it were `moment` (an aware datetime)."""
    if moment is None or timezone.is_naive(moment):
        raise ValueError("complaints.clock.at needs an aware datetime")
    token = _moment.set(moment)
    try:
        yield moment
    finally:
        _moment.reset(token)
