"""`harbour rotate-keys`: re-encrypt every stored secret with the first of HARBOUR_ENCRYPTION_KEYS.

Rotation: put a new key in front of HARBOUR_ENCRYPTION_KEYS (keep the old ones after it),
restart web and workers, run this command, then drop the old keys. Values that no configured
key decrypts are counted and left as they are (exit status 1): nothing is ever overwritten
with something unreadable. Each value is replaced only if it did not change meanwhile.
`harbour sandbox rotate-keys` does the same for the sandbox's database.
"""
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from harbour.core import crypto

# (app label, model, field): every column that holds a crypto.encrypt() token.
ENCRYPTED_FIELDS = [
    ("clinics", "OceanSettings", "oauth_client_secret_encrypted"),
    ("ocean", "OceanToken", "access_token_encrypted"),
    ("sandbox", "Integration", "secret_encrypted"),
]


def rotate_all(stdout=None) -> dict[str, dict[str, int]]:
    """Re-encrypt every value; returns {"app.Model.field": {"rotated": n, "unreadable": m}}."""
    report = {}
    for app_label, model_name, field in ENCRYPTED_FIELDS:
        if not apps.is_installed(f"harbour.{app_label}"):
            continue
        model = apps.get_model(app_label, model_name)
        counts = {"rotated": 0, "unreadable": 0}
        rows = model.objects.exclude(**{field: ""}).values_list("pk", field).order_by("pk").iterator()
        for pk, token in rows:
            try:
                new = crypto.rotate(token)
            except Exception:  # InvalidToken (no key fits) or a malformed value
                counts["unreadable"] += 1
                continue
            # Compare-and-set: a secret saved meanwhile is already under the first key.
            counts["rotated"] += model.objects.filter(pk=pk, **{field: token}).update(**{field: new})
        report[f"{app_label}.{model_name}.{field}"] = counts
    return report


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of HARBOUR_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        report = rotate_all()
        unreadable = 0
        for name, counts in report.items():
            self.stdout.write(f"{name}: {counts['rotated']} re-encrypted, {counts['unreadable']} unreadable")
            unreadable += counts["unreadable"]
        if unreadable:
            raise CommandError(
                f"{unreadable} value(s) could not be decrypted with any configured key and were left as they are."
            )
