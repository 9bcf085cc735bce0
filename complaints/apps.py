from django.apps import AppConfig


class ComplaintsConfig(AppConfig):
    name = "complaints"
    verbose_name = "Complaints"

    def ready(self):
        from . import signals

        signals.connect()  # edits of the registry and the catalogue re-route the open complaints (complaints.signals)
