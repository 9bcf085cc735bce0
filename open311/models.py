from django.core.validators import RegexValidator
from django.db import models

from geo_ourcity.env import RATE_RE


class ApiKey(models.Model):
    """A key issued to an integrator for POSTing requests. Only its SHA-256 is stored."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=8, help_text="first characters, to recognise a key")
    key_hash = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    rate_limit = models.CharField(
        max_length=20, blank=True, validators=[RegexValidator(RATE_RE, "a rate like 60/m, 1000/h or 10/5m")],
        help_text="POSTs this key may make, e.g. 60/m or 1000/h; blank: the default (OURCITY_LIMIT_OPEN311_POSTS)")

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
