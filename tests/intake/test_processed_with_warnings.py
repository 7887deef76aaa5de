"""Processing records its warnings for people (templates, a flag for "needs attention") as well as
in English, and the migration marks the messages processed with warnings before it."""
import dataclasses
import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from harbour.intake.jobs import reprocess
from harbour.intake.models import InboundMessage
from harbour.referrals import process
from tests.referrals import bundles as B

NO_SERVICE_REQUEST = "the bundle has no ServiceRequest"


def test_a_message_without_its_service_request_is_flagged_with_its_templates(clinic, site):
    message = B.deliver_one(clinic, B.variant(drop=("ServiceRequest",)))
    assert message.state == "processed"
    assert NO_SERVICE_REQUEST in message.warnings and all(type(w) is str for w in message.warnings)
    assert message.needs_attention is True
    assert len(message.warning_templates) == len(message.warnings)
    assert {"text": NO_SERVICE_REQUEST, "params": {}} in message.warning_templates
    by_english = dict(zip(message.warnings, message.warning_templates))
    assert all(item["text"] % item["params"] == english if item["params"] else item["text"] == english
               for english, item in by_english.items())


def test_a_clean_message_is_not_flagged(clinic, site):
    bundle = B.load()
    patient = B.resources(bundle, "Patient")[0]
    patient["birthDate"] = "1980-01-02"
    patient["name"][0]["given"] = ["Dana"]
    for ident in patient["identifier"]:
        if ident.get("system", "").endswith("ca-on-patient-hcn"):
            ident["value"] = "1234567890"
    message = B.deliver_one(clinic, bundle)
    assert message.state == "processed" and message.warnings == [], message.warnings
    assert message.needs_attention is False and message.warning_templates == []


def test_processing_again_clears_the_flag_once_the_warnings_are_gone(clinic, site, monkeypatch):
    message = B.deliver_one(clinic, B.variant(drop=("ServiceRequest",)))
    assert message.needs_attention
    read = process.read_message
    # "Reprocess after a fix": a reader that no longer finds anything to say.
    monkeypatch.setattr(process, "read_message", lambda obj: dataclasses.replace(read(obj), warnings=()))
    assert reprocess(InboundMessage.objects.filter(pk=message.pk), now=True) == {"processed": 1}
    message.refresh_from_db()
    assert (message.state, message.warnings, message.warning_templates, message.needs_attention) == (
        "processed", [], [], False)
    monkeypatch.setattr(process, "read_message", read)
    reprocess(InboundMessage.objects.filter(pk=message.pk), now=True)
    message.refresh_from_db()
    assert message.needs_attention and NO_SERVICE_REQUEST in message.warnings


# --- The migration ------------------------------------------------------------------------------

BEFORE = [("intake", "0006_rate_limit_per_host")]
AFTER = [("intake", "0007_processed_with_warnings")]


def table_columns() -> list[str]:
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, "intake_inboundmessage")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_marks_messages_processed_with_warnings(clinic):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps.get_model("intake", "InboundMessage")
        rows = {}
        for n, (state, warnings) in enumerate([("processed", ["the patient has no birth date",
                                                              "ServiceRequest.subject does not match any entry in the bundle"]),
                                               ("processed", []), ("failed", ["x should be text"]),
                                               ("unknown_event", ["unknown event code 'x'"]),
                                               ("processed", ["the patient has no birth date"])]):
            raw = b'{"n": %d}' % n + b" " * 9000
            rows[n] = old.objects.create(clinic_id=clinic.pk, raw=raw, sha256=hashlib.sha256(raw).hexdigest(),
                                         bundle_id=str(n), state=state, warnings=warnings).pk
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("intake"))
    if connection.vendor == "sqlite":
        assert table_columns()[-1] == "raw"  # the new columns before the body (0005)
    messages = {m.pk: m for m in InboundMessage.objects.all()}
    # Only a warning that may mean the referral was read wrong or in part; a missing birth date is usual.
    assert [messages[rows[n]].needs_attention for n in range(5)] == [True, False, False, False, False]
    assert messages[rows[4]].warnings == ["the patient has no birth date"]
    assert all(m.warning_templates == [] for m in messages.values())
    assert bytes(messages[rows[1]].raw).startswith(b'{"n": 1}')
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "intake_inboundmessage")
    assert constraints["inbound_attention"]["columns"] == ["clinic_id", "received_at"]
