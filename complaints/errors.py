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


class ComplaintInvalid(ComplaintError):
    """Several inputs at fault at once (every field is checked before any is refused): `errors` lists one
    ComplaintError per fault, in the order of the form; the first gives `str(exc)` and `field`."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__(str(self.errors[0]), field=self.errors[0].field)


class Faults:
    """Collects the ComplaintErrors of several checks, so that all of them are reported at once.

        faults = Faults()
        value = faults.check(clean_x, raw)   # None when it failed
        faults.raise_any()                   # the one error, or ComplaintInvalid with all of them
    """

    def __init__(self):
        self.errors = []

    def check(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ComplaintInvalid as exc:
            self.errors.extend(exc.errors)
        except ComplaintError as exc:
            self.errors.append(exc)
        return None

    def add(self, error):
        self.errors.append(error)

    def raise_any(self):
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ComplaintInvalid(self.errors)
