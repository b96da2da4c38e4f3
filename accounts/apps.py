from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts & catalog"

    def ready(self) -> None:
        from accounts.roles import roles_sync_after_migrate

        # Runs after every app's migrations so the role groups pick up
        # permissions of apps that migrate after this one.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts.roles_sync")
