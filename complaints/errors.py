"""Errors of the complaint services. Each carries a user-facing message (the API answers it as a 400/403/404)."""


class ComplaintError(ValueError):
    """Bad input or an action that can not be done: `str(exc)` is a sentence for the user.

    `field` names the input at fault (an attribute code, "description", "photo", ...) when there is one.
    """

    def __init__(self, message, *, field=None):
        super().__init__(str(message))
        self.field = field


class TransitionNotAllowed(ComplaintError):
    """The complaint's current state does not allow this action (it may have changed under the caller)."""


class ComplaintPermissionDenied(ComplaintError):
    """The user may not act on this complaint (not staff of its department, nor a dispatcher)."""


class ComplaintNotFound(ComplaintError):
    """No complaint with that tracking code (or id)."""


class OutsideCityError(ComplaintError):
    """The point lies in no admin area of the city: nothing is stored."""
