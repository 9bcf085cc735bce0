from django.apps import AppConfig


class ComplaintsConfig(AppConfig):
    name = "complaints"
    verbose_name = "Complaints"

    def ready(self):
        from . import signals

        signals.connect()  # edits of the registry and the catalogue re-route the open complaints (complaints.signals)

        from geo_ourcity import demo as project_demo

        from . import demo  # issue 10: the demo's moderator and volunteer

        project_demo.register(self.name, logins=[demo.MODERATOR_LOGIN, demo.VOLUNTEER_LOGIN],
                              ensure=demo.ensure_demo_cycle_users)
