"""``manage.py create_staff_user <username> --org <slug> --role <role>``: add a staff member."""

from __future__ import annotations

import getpass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.commands.create_organization import validation_error_text
from accounts.models import Membership, Organization, Role, User
from accounts.services import membership_set, staff_user_create

UNKNOWN_ORGANIZATION = "No organization with slug {slug!r}."
PASSWORD_EMPTY = "The password cannot be empty."
PASSWORD_MISMATCH = "The passwords do not match."
PASSWORD_ATTEMPTS = "No valid password after {n} attempts; nothing was created."
PASSWORD_NOT_GIVEN = "No password given (stdin closed); nothing was created."
MAX_ATTEMPTS = 3


class Command(BaseCommand):
    help = (
        "Create a staff user with a role in an organization. Without --password, asks for it "
        "twice. If the user already exists, only their membership is added or updated (their "
        "password is left unchanged)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="Omit to be asked (safer: not in shell history).")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, org, role, password, email, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(UNKNOWN_ORGANIZATION.format(slug=org))
        where = f"{organization.name} ({organization.slug})"
        user = User.objects.filter(username=username).first()
        if user is not None:
            previous = (
                Membership.objects.filter(user=user, organization=organization)
                .values_list("role", flat=True)
                .first()
            )
            membership_set(user=user, organization=organization, role=role)
            label = Role(role).label
            if previous is None:
                change = f"added to {where} as {label}"
            elif previous == role:
                change = f"already {label} in {where}"
            else:
                change = f"role in {where} changed from {Role(previous).label} to {label}"
            note = " (--password ignored)" if password is not None else ""
            self.stdout.write(
                f"User {username!r} already exists; {change}. Password unchanged{note}."
            )
            return
        candidate = User(username=username, email=email)
        if password is None:
            password = self._prompt_password(candidate)
        else:
            self._validate_password(password, candidate)
        try:
            staff_user_create(
                username=username,
                password=password,
                organization=organization,
                role=role,
                email=email,
            )
        except ValidationError as error:
            raise CommandError(validation_error_text(error)) from error
        self.stdout.write(f"Created staff user {username!r}: {Role(role).label} in {where}.")

    def _validate_password(self, password: str, user: User) -> None:
        if not password:
            raise CommandError(PASSWORD_EMPTY)
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error

    def _prompt_password(self, user: User) -> str:
        for _ in range(MAX_ATTEMPTS):
            try:
                password = getpass.getpass("Password: ")
                again = getpass.getpass("Password (again): ")
            except EOFError as error:
                raise CommandError(PASSWORD_NOT_GIVEN) from error
            if password != again:
                self.stderr.write(PASSWORD_MISMATCH)
                continue
            try:
                self._validate_password(password, user)
            except CommandError as error:
                self.stderr.write(str(error))
                continue
            return password
        raise CommandError(PASSWORD_ATTEMPTS.format(n=MAX_ATTEMPTS))
