"""Unread referrals: activity since a user last opened the referral (ReferralRead), after their watermark.

A referral is unread for a user when its `last_activity_at` is later than both the user's
watermark (ReadWatermark, else the date they joined) and the moment they last opened it.
Counting stops at UNREAD_CAP so the navigation's badge costs the same with 100,000 referrals.
"""
from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import ReadWatermark, Referral, ReferralRead

UNREAD_CAP = 99


def watermark_for(user) -> datetime:
    mark = ReadWatermark.objects.filter(user=user).values_list("all_read_before", flat=True).first()
    return mark or user.date_joined


def mark_read(user, referral, when: datetime | None = None) -> None:
    """Opening the referral page reads everything that happened on it until now."""
    when = when or timezone.now()
    ReferralRead.objects.update_or_create(user=user, referral=referral, defaults={"seen_at": when})


def mark_all_read(user, when: datetime | None = None) -> None:
    ReadWatermark.objects.update_or_create(user=user, defaults={"all_read_before": when or timezone.now()})


def _read_since_activity(user):
    return ReferralRead.objects.filter(user=user, referral_id=OuterRef("pk"),
                                       seen_at__gte=OuterRef("last_activity_at"))


def annotate_unread(referrals, user, watermark: datetime | None = None):
    """Add `is_unread` to a Referral queryset (one indexed lookup per row of the page)."""
    watermark = watermark or watermark_for(user)
    return referrals.alias(read_since=Exists(_read_since_activity(user))).annotate(
        is_unread=Q(last_activity_at__gt=watermark) & Q(read_since=False)
    )


def unread(referrals, user, watermark: datetime | None = None):
    watermark = watermark or watermark_for(user)
    return referrals.filter(last_activity_at__gt=watermark).exclude(Exists(_read_since_activity(user)))


def unread_count(user, clinic, cap: int = UNREAD_CAP) -> int:
    """How many of the clinic's referrals are unread for this user, up to `cap` + 1 (shown "99+")."""
    queryset = unread(Referral.objects.filter(clinic=clinic), user)
    return len(queryset.order_by("-last_activity_at", "-id").values_list("pk", flat=True)[: cap + 1])
