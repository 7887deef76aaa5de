"""referrals/0005: messages without text kept before it get the key Harbour now builds, so Ocean's
next cumulative bundle (or its echo of Harbour's own message) still finds them."""
import hashlib
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from harbour.referrals import dedupe
from harbour.referrals.models import CommunicationMessage

BEFORE = [("referrals", "0004_appointment_location")]
AFTER = [("referrals", "0005_file_only_message_keys")]
SENT = datetime(2025, 6, 2, 13, 0, tzinfo=timezone.utc)


def old_key(text: str, sent) -> str:  # the key as Harbour built it before 0005
    seed = f"{text.strip()}\x00{sent.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return "comm:" + hashlib.sha256(seed.encode()).hexdigest()[:40]


@pytest.mark.django_db(transaction=True)
def test_messages_without_text_are_rekeyed_by_their_file(clinic):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        apps = executor.loader.project_state(BEFORE).apps
        referral = apps.get_model("referrals", "Referral").objects.create(
            clinic_id=clinic.pk, ocean_ref="ref-1", direction="received", status="new", last_activity_at=SENT)
        Message = apps.get_model("referrals", "CommunicationMessage")
        common = {"referral": referral, "direction": "from_referrer", "sent_at": SENT}
        with_text = Message.objects.create(text="Any update?", attachment_titles=["a.pdf"],
                                           dedupe_key=old_key("Any update?", SENT), **common).pk
        file_only = Message.objects.create(text="", attachment_titles=["labs-may.pdf"],
                                           dedupe_key=old_key("", SENT), **common).pk
        url_only = Message.objects.create(text="", attachment_urls=["https://ocean.example/x"],
                                          dedupe_key=old_key("", SENT) + "x", **common).pk
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("referrals"))
    keys = dict(CommunicationMessage.objects.values_list("pk", "dedupe_key"))
    assert keys[with_text] == old_key("Any update?", SENT) == dedupe.communication_key(("Any update?",), SENT, ("a.pdf",))
    assert keys[file_only] == dedupe.communication_key((), SENT, ("labs-may.pdf",))
    assert keys[url_only] == dedupe.communication_key((), SENT, ("https://ocean.example/x",))
