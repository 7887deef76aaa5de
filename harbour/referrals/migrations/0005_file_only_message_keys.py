"""Messages without text: their dedupe key now also holds their first file (its title, else its URL).

Two files sent apart in the same second had one key, so the second was taken for the first
(inbound: dropped as already in the thread; outbound: refused as a double submit). Rows kept
before get the key Harbour now builds, so Ocean's next cumulative bundle, or its echo of a message
Harbour sent, still finds them. A frozen copy of harbour.fhir.build.communication_echo_key: a
migration must not follow later code.
"""
import hashlib
from datetime import timezone

from django.db import migrations


def _key(text: str, sent, file: str) -> str:
    when = sent.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if sent else "-"
    seed = f"{text.strip()}\x00{when}"
    if not text.strip() and file:
        seed += f"\x00{file}"
    return "comm:" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def rekey(apps, schema_editor):
    CommunicationMessage = apps.get_model("referrals", "CommunicationMessage")
    rows = CommunicationMessage.objects.only("id", "text", "sent_at", "attachment_titles", "attachment_urls",
                                             "dedupe_key")
    for row in rows.iterator():
        files = row.attachment_titles or row.attachment_urls
        if row.text.strip() or not files:
            continue
        key = _key(row.text, row.sent_at, files[0])
        if key != row.dedupe_key:
            CommunicationMessage.objects.filter(pk=row.pk).update(dedupe_key=key)


class Migration(migrations.Migration):
    dependencies = [("referrals", "0004_appointment_location")]
    operations = [migrations.RunPython(rekey, migrations.RunPython.noop)]
