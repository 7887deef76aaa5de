import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models import F, Q


def queue_what_the_old_job_would_find(apps, schema_editor):
    """Referrals the matcher has not seen, or that changed since it looked (the old full scan, once)."""
    Referral = apps.get_model("referrals", "Referral")
    MatchQueue = apps.get_model("patients", "MatchQueue")
    now = django.utils.timezone.now()
    pending = Referral.objects.filter(
        Q(direction__in=["received", "sent"], patient_link__isnull=True)
        | Q(patient_link__checked_at__isnull=True, patient_link__isnull=False)
        | Q(updated_at__gt=F("patient_link__checked_at"))
    ).values_list("pk", flat=True)
    batch = []
    for pk in pending.iterator(chunk_size=2000):
        batch.append(MatchQueue(referral_id=pk, queued_at=now))
        if len(batch) >= 2000:
            MatchQueue.objects.bulk_create(batch)
            batch = []
    MatchQueue.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0001_initial'),
        ('referrals', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='MatchQueue',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('queued_at', models.DateTimeField()),
                ('referral', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='referrals.referral')),
            ],
        ),
        migrations.RunPython(queue_what_the_old_job_would_find, migrations.RunPython.noop),
    ]
