from django.apps import AppConfig


class ImportersConfig(AppConfig):
    name = "importers"
    verbose_name = "Imports"

    def ready(self):
        from geo_ourcity import demo as project_demo

        from . import demo

        project_demo.register(self.name, logins=[demo.DATA_STAFF_LOGIN], ensure=demo.ensure_demo_data_staff)
