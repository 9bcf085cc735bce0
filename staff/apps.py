from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = "Department staff workspace"

    def ready(self):
        from geo_ourcity import demo as project_demo

        from . import demo

        project_demo.register(self.name, logins=[*(login for login, _role, _pick in demo.DEMO_STAFF),
                                                 demo.DISPATCHER_LOGIN], ensure=demo.ensure_demo_staff)
