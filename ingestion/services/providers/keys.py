"""Provider keys seen in the providers' usage reports.

A key id the provider reports that Metron does not know is registered as an unmapped
``ProviderKey`` (the ops queue of unmapped keys), as the ingest service does for keys seen
in events, so provider spend on it is surfaced instead of lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import connection

from accounts.models import Organization, ProviderKey


def provider_keys_register(
    *, organization: Organization, provider: str, key_ids: Iterable[str]
) -> dict[str, tuple[int, int | None]]:
    """key id → (ProviderKey pk, mapped feature pk or None); unknown ids registered unmapped."""
    wanted = {key_id for key_id in key_ids if key_id}
    if not wanted:
        return {}

    def lookup(ids):
        return {
            key_id: (pk, feature_id)
            for key_id, pk, feature_id in ProviderKey.objects.filter(
                organization=organization, provider=provider, key_id__in=ids
            ).values_list("key_id", "pk", "feature_id")
        }

    found = lookup(wanted)
    missing = wanted - found.keys()
    if missing:
        ProviderKey.objects.bulk_create(
            [
                ProviderKey(organization=organization, provider=provider, key_id=key_id)
                for key_id in sorted(missing)
            ],
            ignore_conflicts=True,  # a concurrent sync or ingest may register it first
        )
        found.update(lookup(missing))
    return found


def provider_keys_touch(*, last_seen: Mapping[int, datetime]) -> None:
    """Move each key's ``last_seen_at`` forward to the given time (never backwards)."""
    if not last_seen:
        return
    ids = sorted(last_seen)  # one lock order for concurrent writers
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {ProviderKey._meta.db_table} AS k
                SET last_seen_at = GREATEST(coalesce(k.last_seen_at, v.seen), v.seen)
                FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, seen)
                WHERE k.id = v.id""",
            [ids, [last_seen[pk] for pk in ids]],
        )
