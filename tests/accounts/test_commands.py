from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.management.commands import create_staff_user
from accounts.models import Membership, Organization, Role, ServiceAPIKey, User
from metron.api.authentication import ServiceKeyAuthentication
from tests.commands import manage

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "quiet-otter-lantern-42"


def run(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# --- create_organization ------------------------------------------------------


def test_create_organization_creates_it_with_currency_and_timezone():
    out, _ = run(
        "create_organization", "globex", name="Globex AI", currency="eur", timezone="Europe/Paris"
    )

    organization = Organization.objects.get(slug="globex")
    assert (organization.name, organization.reporting_currency, organization.timezone) == (
        "Globex AI",
        "EUR",
        "Europe/Paris",
    )
    assert out == "Created organization Globex AI (globex): currency EUR, time zone Europe/Paris.\n"


def test_create_organization_defaults_to_usd_and_utc():
    run("create_organization", "globex", "--name", "Globex AI")

    organization = Organization.objects.get(slug="globex")
    assert (organization.reporting_currency, organization.timezone) == ("USD", "UTC")


def test_create_organization_refuses_an_existing_slug(org):
    with pytest.raises(CommandError, match="^Organization 'acme' already exists.$"):
        run("create_organization", "acme", name="Another Acme")

    assert Organization.objects.get(slug="acme").name == "Acme AI"


def test_create_organization_names_invalid_fields():
    with pytest.raises(CommandError) as error:
        run("create_organization", "mars", name="Mars", timezone="Mars/Base")

    assert (
        str(error.value)
        == "timezone: 'Mars/Base' is not a known IANA time zone (e.g. Europe/Paris)."
    )
    assert not Organization.objects.filter(slug="mars").exists()


# --- create_api_key -------------------------------------------------------------


def test_create_api_key_prints_the_key_alone_on_the_last_line(org):
    out, _ = run("create_api_key", "acme", scopes="ingest,read", name="ingest service")

    lines = out.splitlines()
    plaintext = lines[-1]
    key = ServiceAPIKey.objects.get_from_key(plaintext)
    assert (key.organization, key.name, key.scopes) == (org, "ingest service", ["ingest", "read"])
    assert key.expiry_date is None
    assert lines[:-1] == [
        f"Created service key 'ingest service' (prefix {key.prefix}) for Acme AI (acme): "
        "scopes ingest, read; does not expire.",
        "Store it now; it is not shown again:",
    ]


def test_create_api_key_key_authenticates_api_requests(org):
    out, _ = run("create_api_key", "acme", scopes="read")
    plaintext = out.splitlines()[-1]

    request = RequestFactory().get("/api/v1/", HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    service_user, key = ServiceKeyAuthentication().authenticate(request)

    assert key.organization == org
    assert key.has_scope("read") and not key.has_scope("write")
    assert service_user.is_authenticated


def test_create_api_key_key_reads_the_api(org, other_org):
    out, _ = run("create_api_key", "acme", scopes="read")
    api = APIClient()

    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {out.splitlines()[-1]}")
    assert api.get("/api/v1/plans/").status_code == 200
    api.credentials(HTTP_AUTHORIZATION="Api-Key not.the-key")
    assert api.get("/api/v1/plans/").status_code in (401, 403)


def test_create_api_key_stores_no_plaintext(org):
    out, _ = run("create_api_key", "acme", scopes="ingest")
    plaintext = out.splitlines()[-1]
    secret = plaintext.partition(".")[2]

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_serviceapikey")
        (row,) = cursor.fetchall()
    assert not [value for value in row if secret in str(value)]


def test_create_api_key_sets_the_expiry(org):
    before = timezone.now()
    out, _ = run("create_api_key", "acme", "--scopes", "read", "--expires-in-days", "30")

    key = ServiceAPIKey.objects.get_from_key(out.splitlines()[-1])
    assert before + timedelta(days=30) <= key.expiry_date <= timezone.now() + timedelta(days=30)
    assert f"expires {key.expiry_date:%Y-%m-%d %H:%M} UTC." in out


def test_create_api_key_defaults_to_a_dated_name(org):
    out, _ = run("create_api_key", "acme", scopes="read")

    key = ServiceAPIKey.objects.get_from_key(out.splitlines()[-1])
    assert key.name.startswith(f"CLI key {timezone.now():%Y-%m-%d}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme", "--scopes", "ingest,admin"], "Unknown scope 'admin'; use ingest, read or write."),
        (["acme", "--scopes", " , "], "A service key needs at least one scope."),
        (["nope", "--scopes", "read"], "No organization with slug 'nope'."),
        (
            ["acme", "--scopes", "read", "--expires-in-days", "0"],
            "--expires-in-days must be a positive number of days.",
        ),
    ],
)
def test_create_api_key_refuses_bad_input(org, args, message):
    with pytest.raises(CommandError) as error:
        run("create_api_key", *args)

    assert str(error.value) == message
    assert not ServiceAPIKey.objects.exists()


def test_command_errors_exit_non_zero_without_a_traceback():
    done = manage("create_api_key", "nope", "--scopes", "read")

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "CommandError: No organization with slug 'nope'.\n"


# --- create_staff_user ----------------------------------------------------------


def test_create_staff_user_with_password(org, roles):
    out, _ = run(
        "create_staff_user", "alice", org="acme", role="ops", password=GOOD_PASSWORD,
        email="alice@example.com",
    )  # fmt: skip

    user = User.objects.get(username="alice")
    assert user.is_staff and user.check_password(GOOD_PASSWORD)
    assert user.email == "alice@example.com"
    assert list(user.memberships.values_list("organization__slug", "role")) == [("acme", "ops")]
    assert out == "Created staff user 'alice': Ops in Acme AI (acme).\n"


def test_create_staff_user_new_user_can_log_in(client, org, roles):
    run("create_staff_user", "alice", org="acme", role="finance", password=GOOD_PASSWORD)

    assert client.login(username="alice", password=GOOD_PASSWORD)


def prompts(monkeypatch, *answers: str) -> list[str]:
    """Answer getpass prompts in order; returns the prompts shown."""
    shown, replies = [], iter(answers)

    def fake_getpass(prompt=""):
        shown.append(prompt)
        return next(replies)

    monkeypatch.setattr(create_staff_user.getpass, "getpass", fake_getpass)
    return shown


def test_create_staff_user_prompts_twice_until_the_passwords_match(monkeypatch, org, roles):
    shown = prompts(monkeypatch, GOOD_PASSWORD, "typo", GOOD_PASSWORD, GOOD_PASSWORD)

    out, err = run("create_staff_user", "alice", org="acme", role="engineering")

    assert shown == ["Password: ", "Password (again): "] * 2
    assert err == "The passwords do not match.\n"
    assert User.objects.get(username="alice").check_password(GOOD_PASSWORD)
    assert out == "Created staff user 'alice': Engineering in Acme AI (acme).\n"


def test_create_staff_user_prompt_shows_validator_messages_and_refuses_empty(
    monkeypatch, org, roles
):
    prompts(monkeypatch, "", "", "12345", "12345", GOOD_PASSWORD, GOOD_PASSWORD)

    _, err = run("create_staff_user", "alice", org="acme", role="ops")

    assert err.splitlines() == [
        "The password cannot be empty.",
        "This password is too short. It must contain at least 8 characters. "
        "This password is too common. This password is entirely numeric.",
    ]
    assert User.objects.get(username="alice").check_password(GOOD_PASSWORD)


def test_create_staff_user_gives_up_after_three_failed_prompts(monkeypatch, org, roles):
    prompts(monkeypatch, *["one-long-password", "another-long-password"] * 3)

    with pytest.raises(CommandError, match="No valid password after 3 attempts"):
        run("create_staff_user", "alice", org="acme", role="ops")

    assert not User.objects.filter(username="alice").exists()


def test_create_staff_user_stops_when_stdin_closes(monkeypatch, org, roles):
    def closed(prompt=""):
        raise EOFError

    monkeypatch.setattr(create_staff_user.getpass, "getpass", closed)

    with pytest.raises(CommandError, match="No password given"):
        run("create_staff_user", "alice", org="acme", role="ops")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "The password cannot be empty."),
        ("k9#vQz", "This password is too short. It must contain at least 8 characters."),
        ("password", "This password is too common."),
    ],
)
def test_create_staff_user_refuses_weak_passwords(org, roles, password, message):
    with pytest.raises(CommandError) as error:
        run("create_staff_user", "alice", org="acme", role="ops", password=password)

    assert str(error.value) == message
    assert not User.objects.filter(username="alice").exists()


def test_create_staff_user_refuses_an_unknown_role(org, roles):
    with pytest.raises(CommandError, match="invalid choice: 'boss'"):
        run("create_staff_user", "alice", "--org", "acme", "--role", "boss", "--password", "x")

    assert not User.objects.filter(username="alice").exists()


def test_create_staff_user_refuses_an_unknown_organization(roles):
    with pytest.raises(CommandError, match="^No organization with slug 'nope'.$"):
        run("create_staff_user", "alice", org="nope", role="ops", password=GOOD_PASSWORD)


def test_create_staff_user_existing_user_gets_a_membership(org, other_org, staff_factory):
    user = staff_factory(org, Role.OPS, username="alice")

    out, _ = run("create_staff_user", "alice", org="rival", role="finance")

    assert set(user.memberships.values_list("organization__slug", "role")) == {
        ("acme", "ops"),
        ("rival", "finance"),
    }
    assert out == (
        "User 'alice' already exists; added to Rival Corp (rival) as Finance. Password unchanged.\n"
    )


def test_create_staff_user_existing_user_changes_role_and_keeps_password(org, staff_factory):
    user = staff_factory(org, Role.OPS, username="alice")
    old_hash = user.password

    out, _ = run(
        "create_staff_user", "alice", org="acme", role="admin", password="ignored-new-password"
    )

    assert Membership.objects.get(user=user).role == Role.ADMIN
    user.refresh_from_db()
    assert user.password == old_hash
    assert out == (
        "User 'alice' already exists; role in Acme AI (acme) changed from Ops to Admin. "
        "Password unchanged (--password ignored).\n"
    )
