"""A burst of 1,000 "resend as new" duplicates (Ocean's Bulk Actions, at most 1,000 refs at a
time): each has one effect.

Harbour already holds 1,000 referrals (their add-service-request messages queued and processed).
Ocean then resends all of them "as a new referral": add-service-request again, a new Bundle.id,
a later timestamp; 50 clients post them at once, and each delivery is posted twice (a retry of
the same bundle, as when an answer is lost). Every post gets 200; each resend is stored once;
no referral is created; each resend adds exactly one timeline entry ("resent") to its referral.
"""
import collections
import json
import time
import uuid

import pytest

from tests.faults.helpers import Poster, clinic_with_key, report
from tests.production.workload import bundle
from tests.servers import start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]

REFERRALS, CLIENTS = 1000, 50


@pytest.fixture
def harbour(tmp_path, request):
    server = start_harbour(tmp_path / "harbour")
    yield server
    report(server, request)
    server.stop()


def pending(harbour) -> int:
    return harbour.sql("SELECT count(*) FROM intake_inboundmessage WHERE state = 'pending'")[0][0]


def test_a_thousand_resends_as_new_have_one_effect_each(harbour):
    key = clinic_with_key(harbour)
    out = harbour.shell(
        "import json; from harbour.clinics.models import Clinic; from tests.production.workload import fill_queue; "
        f"print(json.dumps(fill_queue({REFERRALS}, 1, clinic_id=Clinic.objects.get().pk)))"
    )
    refs = json.loads(out.strip().splitlines()[-1])
    wait_for(lambda: pending(harbour) == 0, timeout=150, interval=0.5, what="the 1,000 referrals to be processed")
    assert harbour.sql("SELECT count(*) FROM referrals_referral") == [(REFERRALS,)]

    resends = [(bid := str(uuid.uuid4()), bundle(ref, step=60, bundle_id=bid)) for ref in refs]
    batches = [[] for _ in range(CLIENTS)]
    for n, item in enumerate(resends):
        batches[n % CLIENTS] += [item, item]  # the same delivery twice
    poster = Poster(harbour.base_url, key, deadline=time.monotonic() + 90)
    poster.run(batches)
    poster.join()
    assert len(poster.acked) == REFERRALS
    assert [a.status for a in poster.attempts] == [200] * (2 * REFERRALS), "every post, duplicates included, gets 200"

    wait_for(lambda: pending(harbour) == 0, timeout=150, interval=0.5, what="the resends to be processed")
    assert harbour.sql("SELECT count(*) FROM referrals_referral") == [(REFERRALS,)]
    stored = dict(harbour.sql("SELECT bundle_id, count(*) FROM intake_inboundmessage GROUP BY bundle_id"))
    assert all(stored.get(bundle_id) == 1 for bundle_id, _ in resends), "a resend stored twice or not at all"
    assert len(stored) == 2 * REFERRALS
    assert harbour.sql("SELECT state, attempts, count(*) FROM intake_inboundmessage GROUP BY state, attempts") == [
        ("processed", 1, 2 * REFERRALS)
    ]
    resend_ids = tuple(bundle_id for bundle_id, _ in resends)
    effects = harbour.sql(
        "SELECT m.bundle_id, e.code FROM referrals_event e JOIN intake_inboundmessage m ON m.id = e.inbound_message_id"
    )
    per_resend = collections.defaultdict(list)
    for bundle_id, code in effects:
        if bundle_id in set(resend_ids):
            per_resend[bundle_id].append(code)
    assert len(per_resend) == REFERRALS
    assert collections.Counter(tuple(codes) for codes in per_resend.values()) == {("referral_resent",): REFERRALS}
