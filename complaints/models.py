"""Complaints: a geotagged problem, its routing, its state and its append-only history."""
from django.conf import settings
from django.contrib.gis.db import models
from django.db.models.functions import Cast, Replace
from django.utils import timezone

from facilities.models import AdminArea, Department, Facility
from routing.models import Category, RoutingDecision

from . import clock
from .photos import CleanPhotoField
from .tracking import new_confirmation_secret

# A new confirmation secret made by PostgreSQL (gen_random_uuid: 122 random bits from its strong random source): for
# rows that are not written through the ORM, and for each complaint stored before the column was added.
CONFIRMATION_SECRET_SQL = Replace(Cast(models.Func(function="gen_random_uuid", output_field=models.UUIDField()),
                                       models.CharField()), models.Value("-"), models.Value(""))


class State(models.TextChoices):
    NEW = "new", "new"
    ASSIGNED = "assigned", "assigned"
    IN_PROGRESS = "in_progress", "in progress"
    ANSWERED = "answered", "answered"
    RESOLVED = "resolved", "resolved"
    REOPENED = "reopened", "reopened"
    TRANSFERRED = "transferred", "transferred"
    DUPLICATE = "duplicate", "duplicate"
    HIDDEN = "hidden", "hidden (moderation)"
    # The department's answer waits for a moderator (issue 10: where the catalogue or the authority says so).
    MODERATION = "moderation", "answer in moderation"


# States in which a complaint is still being worked: re-routing moves only these.
OPEN_STATES = (State.NEW, State.ASSIGNED, State.IN_PROGRESS, State.REOPENED, State.TRANSFERRED)
# Open311 `status` is "closed" for these, "open" for all others.
CLOSED_STATES = (State.RESOLVED, State.DUPLICATE, State.HIDDEN)
# States in which the deadline runs: not yet answered in public. An answer in moderation is not public yet, so its
# complaint can still go past its deadline (the moderation's time counts: the deadline keeps running).
DEADLINE_STATES = OPEN_STATES + (State.MODERATION,)


class Complaint(models.Model):
    tracking_code = models.CharField(max_length=16, unique=True, help_text="public code the resident follows")
    token = models.CharField(max_length=36, unique=True, help_text="Open311 token")
    # What the resident's confirmation key is derived from (complaints.tracking.confirmation_key): never shown.
    confirmation_secret = models.CharField(max_length=32, default=new_confirmation_secret,
                                           db_default=CONFIRMATION_SECRET_SQL, editable=False)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="complaints")
    location = models.PointField(srid=4326)
    address_string = models.CharField(max_length=500, blank=True)
    description = models.TextField(max_length=4000, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # A photo the integrator hosts itself (Open311 `media_url`): shown back as given, never fetched by the server.
    media_url = models.URLField(max_length=1000, blank=True)
    # Contact data: never in public output.
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    device_id = models.CharField(max_length=100, blank=True)
    account_id = models.CharField(max_length=100, blank=True)
    # The language the resident reported in (the request's): their mails are written in it (complaints.notify).
    language = models.CharField(max_length=16, blank=True, default="")

    state = models.CharField(max_length=16, choices=State.choices, default=State.NEW)
    decision = models.ForeignKey(RoutingDecision, on_delete=models.PROTECT, related_name="+")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="complaints")
    area = models.ForeignKey(AdminArea, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    facility = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                 related_name="+")
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Set by complaint_create (not auto_now_add) so that the deadline counts from exactly this moment.
    submitted_at = models.DateTimeField(default=clock.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    deadline = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)
    # When the scheduler found it still open past its deadline (complaints.services.complaints_mark_overdue).
    overdue_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=100, blank=True, help_text="web, or the API key's name")
    # The answer cycle (issue 10): once an answer is public the resident may confirm or dispute it until
    # `confirm_until` (the category's confirm_days); silence then closes it as resolved without confirmation.
    confirm_until = models.DateTimeField(null=True, blank=True)
    confirm_reminded_at = models.DateTimeField(null=True, blank=True)
    resolved_unconfirmed = models.BooleanField(default=False, db_default=False, help_text="resolved by the end of the confirmation "
                                               "window, without the resident's word")

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [
            models.Index(fields=["department", "state", "deadline"], name="complaint_dept_state_deadline"),
            models.Index(fields=["state"], name="complaint_state"),
            # the scheduler's confirmation windows (complaints.cycle): answered complaints by the window's end
            models.Index(fields=["confirm_until"], condition=models.Q(state="answered"), name="complaint_confirm_due"),
        ]

    def __str__(self):
        # The public number; the tracking code is the resident's key and must not leak through str().
        return f"№ {self.pk}"

    @property
    def is_open(self):
        return self.state in OPEN_STATES


class ComplaintEvent(models.Model):
    """One line of a complaint's history. Append-only: written by the services in complaints.services only."""

    class Kind(models.TextChoices):
        CREATED = "created"
        STATE = "state"
        ROUTED = "routed"
        ANSWER = "answer"
        TRANSFER = "transfer"
        DUPLICATE = "duplicate"
        CONFIRMED = "confirmed"
        REOPENED = "reopened"
        HIDDEN = "hidden"
        CATEGORY = "category"  # a member of staff changed the category (complaints.services.complaint_recategorise)
        OVERDUE = "overdue"
        # the answer cycle (issue 10)
        MODERATION = "moderation"  # the department's answer went to a moderator (staff only)
        RETURNED = "returned"  # a moderator returned the answer to the department with a reason (staff only)
        UNCONFIRMED = "unconfirmed"  # the confirmation window ended in silence: resolved without confirmation
        CHECKED = "checked"  # a volunteer's on-site check found it fixed
        CHECK_FAILED = "check_failed"  # a volunteer's on-site check found it not fixed: reopened

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="events")
    # complaints.clock.now: the real time, unless a back-dated history is written (complaints.clock.at)
    at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, help_text="resident, a staff login, api:NAME, system")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    from_department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decision = models.ForeignKey(RoutingDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    public = models.BooleanField(default=True)

    class Meta:
        ordering = ["at", "id"]


class AnswerQuerySet(models.QuerySet):
    def published(self):
        """The answers the public may read: not those waiting for a moderator or returned by one."""
        return self.filter(state=Answer.State.PUBLISHED)


class Answer(models.Model):
    class State(models.TextChoices):
        PUBLISHED = "published", "published"
        MODERATION = "moderation", "waiting for a moderator"
        RETURNED = "returned", "returned to the department"

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="answers")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    text = models.TextField(max_length=4000)
    created_at = models.DateTimeField(default=clock.now)
    # Moderation (issue 10): who published or returned it, when, and why it was returned.
    state = models.CharField(max_length=16, choices=State.choices, default=State.PUBLISHED,
                             db_default=State.PUBLISHED.value)
    moderated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    moderated_at = models.DateTimeField(null=True, blank=True)
    return_reason = models.TextField(blank=True)

    objects = AnswerQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        permissions = [("moderate_answer", "Can publish or return departments' answers (moderation)")]


class Photo(models.Model):
    """A resident's or a department's photo: re-encoded on upload, so EXIF (and GPS) never reaches the disk."""

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="photos")
    answer = models.ForeignKey(Answer, null=True, blank=True, on_delete=models.CASCADE, related_name="photos")
    file = CleanPhotoField(upload_to="photos/%Y/%m/")
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class Outbox(models.Model):
    """The mail outbox (DESIGN.md): every mail to send, one row written in the transaction that causes it (so a
    rollback leaves no mail, a crash after the commit loses none), sent by the queue's workers (complaints.outbox),
    retried with backoff and recorded. `dedupe_key` is unique: whatever writes a mail twice (a retried task, two
    requests) gets one row, and one row is sent at most once (its row lock is held for the whole send).

    What a mail says is made when it is sent, by its kind's renderer (complaints.outbox.mail_kind), from `context`
    and the complaint. A secret (a tracking code, a confirmation key) is never stored here: the renderer reads it."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed (gave up after the last attempt)"
        CANCELLED = "cancelled", "cancelled (no longer due)"

    kind = models.CharField(max_length=40)
    recipient = models.EmailField(max_length=254)
    language = models.CharField(max_length=16, blank=True)
    context = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    complaint = models.ForeignKey(Complaint, null=True, blank=True, on_delete=models.CASCADE, related_name="mails")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When a worker's relay put the row's task on the queue (complaints.outbox.outbox_relay); NULL: not yet. The
    # writing request publishes nothing itself (the publish cost the web request about 1 ms of CPU).
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "outbox mail"
        verbose_name_plural = "outbox"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["next_attempt_at"], condition=models.Q(state="pending"),
                                name="outbox_due"),
                   models.Index(fields=["id"], condition=models.Q(state="pending", queued_at__isnull=True),
                                name="outbox_unqueued")]

    def __str__(self):
        return f"{self.kind} #{self.pk} ({self.state})"


def finest_active_areas():
    """The areas a volunteer may be approved for (Volunteer.districts' choices in the admin)."""
    from facilities.selectors import finest_level

    return {"level": finest_level(), "valid_to__isnull": True}


class Volunteer(models.Model):
    """A resident approved (by staff, in the admin) to check fixes on the spot in some districts (issue 10): the
    active areas of the city's finest level (facilities.selectors.finest_level; districts in the demo)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="volunteer")
    districts = models.ManyToManyField(AdminArea, blank=True, related_name="+",
                                       limit_choices_to=finest_active_areas)
    approved = models.BooleanField(default=False)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="why approved (staff only)")

    def __str__(self):
        return f"volunteer {self.user}"


class VolunteerCheck(models.Model):
    """A volunteer's on-site check of an answered or resolved complaint: a failed one reopens it to its department
    and counts against that department (`department`: the one whose answer was checked)."""

    class Verdict(models.TextChoices):
        FIXED = "fixed", "fixed"
        NOT_FIXED = "not_fixed", "not fixed"

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="checks")
    volunteer = models.ForeignKey(Volunteer, on_delete=models.PROTECT, related_name="checks")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    note = models.TextField(max_length=4000, blank=True)
    # Re-encoded as the complaints' photos are (complaints.photos.clean_photo): no EXIF, no GPS.
    photo = CleanPhotoField(upload_to="checks/%Y/%m/", blank=True)
    photo_content_type = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]


# --- hearing back (complaints.notify): follows, support, area alerts, residents' sign-in links ---------------

class Subscription(models.TextChoices):
    """A follow's or an alert's state: `pending` until its address is confirmed by the link mailed to it (double
    opt-in), `active` while mailed, `stopped` once unsubscribed (kept: an unsubscribed address is not mailed
    again, not even as the reporter)."""

    PENDING = "pending", "pending (not confirmed)"
    ACTIVE = "active", "active"
    STOPPED = "stopped", "stopped (unsubscribed)"


class Follow(models.Model):
    """An e-mail address told of each public change of a complaint (complaints.notify). A reporter who
    unsubscribes gets a `stopped` row too, so that the event mails leave their address out."""

    class Source(models.TextChoices):
        FOLLOW = "follow", "followed on the site"
        DUPLICATE = "duplicate", "followed a duplicate of it, or reported one"
        REPORTER = "reporter", "the reporter (an unsubscription)"

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="follows")
    email = models.EmailField(max_length=254)  # stored in lower case (complaints.notify.normal_email)
    language = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16, choices=Subscription.choices, default=Subscription.PENDING)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.FOLLOW)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["complaint", "email"], name="follow_one_per_address")]
        indexes = [models.Index(fields=["complaint", "state"], name="follow_complaint_state"),
                   models.Index(fields=["email"], name="follow_email")]

    def __str__(self):
        return f"follow of № {self.complaint_id} ({self.state})"


class Support(models.Model):
    """A resident's "me too" for a complaint: one per client (its address, kept only as a keyed hash) and complaint;
    the public count is the number of rows."""

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="supports")
    client = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["complaint", "client"], name="support_one_per_client")]


class Alert(models.Model):
    """New problems in a district (or okrug), within a radius of a point, or of a category group, mailed to a
    confirmed address at once (the scheduler's alert sweep) or as one daily digest."""

    class Frequency(models.TextChoices):
        IMMEDIATE = "immediate", "immediately"
        DAILY = "daily", "daily digest"

    email = models.EmailField(max_length=254)
    language = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16, choices=Subscription.choices, default=Subscription.PENDING)
    frequency = models.CharField(max_length=16, choices=Frequency.choices, default=Frequency.IMMEDIATE)
    area = models.ForeignKey(AdminArea, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    point = models.PointField(srid=4326, null=True, blank=True)
    radius_m = models.PositiveIntegerField(null=True, blank=True)
    group = models.CharField(max_length=100, blank=True, help_text="a category group: its name in the default language (Category.group_key)")
    # Complaints up to this id have been looked at for this alert (the sweep moves it on).
    seen_up_to = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(
            name="alert_one_kind_of_place",
            condition=(models.Q(area__isnull=False, point__isnull=True, group="")
                       | models.Q(area__isnull=True, point__isnull=False, radius_m__isnull=False, group="")
                       | (models.Q(area__isnull=True, point__isnull=True) & ~models.Q(group=""))))]
        indexes = [models.Index(fields=["state", "frequency"], name="alert_state_frequency"),
                   models.Index(fields=["email"], name="alert_email")]

    def __str__(self):
        return f"alert #{self.pk} ({self.state})"


class SignInLink(models.Model):
    """A resident's sign-in link (no password): single use, expiring. The link carries an HMAC of `secret` under
    SECRET_KEY (complaints.notify.signin_token), so a copy of the database can not sign anyone in."""

    email = models.EmailField(max_length=254)
    secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
