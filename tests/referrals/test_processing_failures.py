"""A failing message is kept, marked without patient data, blocks nobody, and reprocesses after a fix."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from harbour.core.worker import run_until_idle
from harbour.intake.models import InboundMessage
from harbour.referrals import snapshot
from harbour.referrals.models import Event, Referral
from tests.referrals import bundles as B


@pytest.fixture
def buggy_reader(monkeypatch):
    """A processing bug whose exception text quotes patient data."""
    real = snapshot.snapshot_fields

    def explode(message):
        if message.event == "notify-update-service-request":
            raise ValueError(f"cannot handle patient {message.patient.family} HCN {message.patient.hcn}")
        return real(message)

    monkeypatch.setattr(snapshot, "snapshot_fields", explode)
    return monkeypatch


def test_failure_is_safe_does_not_block_and_reprocesses(clinic, site, buggy_reader):
    bad = B.store(clinic, B.variant(B.FULL))  # stored first, fails
    good = B.store(clinic, B.load())
    run_until_idle()
    bad.refresh_from_db()
    good.refresh_from_db()
    assert good.state == "processed"
    assert bad.state == "failed" and bad.attempts == 1
    assert bad.error.startswith("ValueError at test_processing_failures.py:")  # class and place only
    for secret in ("DKTest", "1234567890", "cannot handle"):
        assert secret not in bad.error
    assert Referral.objects.count() == 1
    assert not Event.objects.filter(inbound_message=bad).exists()  # nothing half-applied

    buggy_reader.undo()  # the fix is deployed
    out = StringIO()
    call_command("reprocess", "--failed", stdout=out)
    assert "queued: 1" in out.getvalue()
    run_until_idle()
    bad.refresh_from_db()
    assert bad.state == "processed" and bad.error == "" and bad.attempts == 2
    assert Referral.objects.get().patient_hcn == "1234567890"


def test_reprocess_now_by_id_is_idempotent(clinic, site):
    message = B.store(clinic, B.variant(B.FULL))
    run_until_idle()
    referral = Referral.objects.get()
    before = list(referral.events.values_list("code", "dedupe_key"))
    out = StringIO()
    call_command("reprocess", "--id", str(message.pk), "--now", "--clinic", "soleil.example.org", stdout=out)
    assert "processed: 1" in out.getvalue()
    assert list(referral.events.values_list("code", "dedupe_key")) == before
    assert referral.messages.count() == 1 and referral.attachments.count() == 2


def test_reprocess_command_needs_a_choice_and_a_real_clinic(clinic):
    with pytest.raises(CommandError, match="--failed"):
        call_command("reprocess")
    with pytest.raises(CommandError, match="No clinic"):
        call_command("reprocess", "--failed", "--clinic", "nowhere.example.org")
    with pytest.raises(CommandError, match="No inbound message 999"):  # an operator's typo is an error (exit 1)
        call_command("reprocess", "--id", "999", stdout=StringIO(), stderr=StringIO())


def test_reprocess_leaves_other_clinics_alone(clinic, other_clinic, site, buggy_reader):
    mine = B.store(clinic, B.variant(B.FULL))
    theirs = B.store(other_clinic, B.variant(B.FULL))
    run_until_idle()
    call_command("reprocess", "--failed", "--clinic", str(clinic.pk), stdout=StringIO())
    assert InboundMessage.objects.get(pk=mine.pk).state == "pending"
    assert InboundMessage.objects.get(pk=theirs.pk).state == "failed"


@pytest.mark.parametrize("how", ["worker", "reprocess now"])
def test_a_failure_after_some_writes_undoes_them_all_and_is_recorded(clinic, site, monkeypatch, how):
    """The worker rolls its whole transaction back and records the failure in a new one; reprocessing
    at once rolls back to a savepoint. Either way the referral written before the failure is gone."""
    from harbour.intake.jobs import reprocess
    from harbour.referrals import process

    message = B.store(clinic, B.load())
    if how == "reprocess now":
        message.state = "failed"
        message.save()

    def broken(self, existing):
        assert Referral.objects.filter(ocean_ref=self.referral.ocean_ref).exists()  # written by now
        raise RuntimeError("late failure")

    monkeypatch.setattr(process._Apply, "_new_attachments", broken)
    if how == "worker":
        assert run_until_idle() == 1
    else:
        assert reprocess(InboundMessage.objects.filter(pk=message.pk), now=True) == {"failed": 1}
    message.refresh_from_db()
    assert message.state == "failed" and message.attempts == 1 and message.processed_at is not None
    assert message.error.startswith("RuntimeError at test_processing_failures.py:")
    assert not Referral.objects.exists() and not Event.objects.exists()

    monkeypatch.undo()
    message.state = "pending"
    message.save()
    run_until_idle()
    message.refresh_from_db()
    assert message.state == "processed" and message.attempts == 2 and Referral.objects.count() == 1


def test_a_failing_claim_is_not_recorded_as_a_failed_message(clinic, site, monkeypatch):
    """A database error while claiming says nothing about the message: it stays pending for the next pass."""
    from django.db import OperationalError

    from harbour.intake import jobs

    message = B.store(clinic, B.load())
    real_claim, calls = jobs._claim, []

    def once_unreachable(candidate):  # fails once, then works: a retry must not find a "failure" to record
        calls.append(candidate.pk)
        if len(calls) == 1:
            raise OperationalError("the database went away")
        return real_claim(candidate)

    monkeypatch.setattr(jobs, "_claim", once_unreachable)
    with pytest.raises(OperationalError):
        jobs.process_pending()
    message.refresh_from_db()
    assert message.state == "pending" and message.attempts == 0 and message.error == ""
    assert calls == [message.pk]


# --- Bodies the reader accepts although no strict JSON writer makes them ----------------------


def _hostile_bodies():
    from tests.fhir.hostile import ACCEPTED, ODD_EVENTS

    return {**{k: (v, "processed") for k, v in ACCEPTED.items()},
            **{k: (v, "unknown_event") for k, v in ODD_EVENTS.items()}}


@pytest.mark.parametrize("name", sorted(_hostile_bodies()))
def test_hostile_but_accepted_bodies_are_processed_never_failed(clinic, site, name):
    """NaN, Infinity, 1e400, lone surrogates and NUL (names, event code), 1,000-deep extensions,
    huge numbers: the worker stores what it read (SQLite and PostgreSQL refuse lone surrogates
    and NUL), or files an odd event code as unknown; never 'failed' with an encoding error."""
    raw, expected = _hostile_bodies()[name]
    message = B.store(clinic, raw)
    run_until_idle()
    message.refresh_from_db()
    assert (message.state, message.error) == (expected, "")
    if expected == "processed":
        referral = Referral.objects.get()
        if "family" in name or name == "surrogate-and-nan":
            assert "\ufffd" in referral.patient_family
            assert "\x00" not in referral.patient_family
