from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import engine

        # route()'s PL/pgSQL function follows the code: (re)created after every migrate (routing.engine).
        post_migrate.connect(engine.install_route_function_after_migrate, sender=self,
                             dispatch_uid="routing.install_route_function")
