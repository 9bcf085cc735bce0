from django.apps import AppConfig


class FacilitiesConfig(AppConfig):
    name = "facilities"
    verbose_name = "Registry"

    def ready(self):
        from . import audit

        audit.connect()  # the membership audit: every change of who belongs where
