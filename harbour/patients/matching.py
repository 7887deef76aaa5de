"""Which chart a referral belongs to (contract §5.6 stance).

Rules
- Automatic link only on certainty: exactly one chart of the clinic with the referral's health
  card number (digits) AND birth date. No HCN, no birth date, no chart or several → a person decides.
- A copy of a referral the clinic sent carries the clinic's own chart number (the MRN it sent):
  issue #5 links it through that number, the contract's §5.6 stance wants no automatic link
  without the health card number. Both are kept by linking through the chart number only when
  that chart agrees with the referral: no health card number, birth date or family name that
  both sides know and that differs (else a person decides, the chart first among the candidates),
  and no other chart that is the one strong HCN + birth date match. Otherwise the rules above.
- Once a person has decided (linked, created a chart, unlinked), the matcher never links on its own.
- The referral never overwrites the chart's protected fields (names, HCN, birth date, sex): each
  difference becomes an open ChartReviewItem. A different version code on the same card is a
  reissued card, offered the same way as an update.
- A person linking a chart whose identity clearly disagrees with the referral's patient must
  confirm it on a page listing the differences (identity_conflicts): the health card numbers
  differ (both known: a number belongs to one person for life, a reissued card changes only its
  version code), or the birth date AND the family name both differ (both known; either alone is a
  typo or a name change, left to the review items). Agreeing charts link in one click.
- Copying a referral's identifier into the chart (names, sex, birth date, card number, version
  code: CONFIRM_FIELDS) needs a person's confirmation of the very values shown (a token).
- Phone, email, address: filled in where the chart's is blank (Ocean does the same for blank
  fields, and a chart with no phone gains nothing from a question); a different non-blank value is
  never overwritten, it becomes a review item like the protected fields, so nothing diverges unseen.

Every decision goes to the audit log with ids, codes and field names only, never values.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

import orjson
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from harbour.audit.log import record
from harbour.referrals.models import Direction, Referral

from .queue import enqueue
from .models import (
    IDENTITY_FIELDS, PROTECTED_FIELDS, ChartReviewItem, LinkReason, LinkState, PatientChart, ReferralPatientLink,
    ReviewField, Sex, fold, hcn_digits,
)

MAX_CANDIDATES = 10

# Chart field → the referral's snapshot field.
REFERRAL_FIELD = {
    ReviewField.FAMILY: "patient_family",
    ReviewField.GIVEN: "patient_given",
    ReviewField.SEX: "patient_sex",
    ReviewField.BIRTH_DATE: "patient_birth_date",
    ReviewField.HCN: "patient_hcn",
    ReviewField.HCN_VERSION: "patient_hcn_version",
    ReviewField.PHONE: "patient_phone",
    ReviewField.EMAIL: "patient_email",
    ReviewField.ADDRESS: "patient_address",
}
FILLABLE_FIELDS = (ReviewField.PHONE, ReviewField.EMAIL, ReviewField.ADDRESS)


# Copying one of these from a referral into the chart needs a person's confirmation.
CONFIRM_FIELDS = IDENTITY_FIELDS


class AlreadyLinked(Exception):
    """The referral is linked to another chart: unlink first (a stale page must not relink)."""


class NeedsConfirmation(Exception):
    """A person must confirm, on a page showing the values, before this link or chart change.
    `token` stamps the values the page shows: the action goes ahead only with that same token, so
    a confirmation never covers values that changed since (another referral, another person).
    `fields` are field codes only (safe for logs and audit entries)."""

    def __init__(self, token: str, fields: list[str]):
        super().__init__(", ".join(fields))
        self.token, self.fields = token, fields


# --- values ----------------------------------------------------------------------------------

def _text(field: str, value) -> str:
    """A chart or referral value as the text a review item stores."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    value = " ".join(str(value).split())
    if field == ReviewField.HCN:
        return hcn_digits(value)
    if field == ReviewField.HCN_VERSION:
        return value.upper()
    if field == ReviewField.SEX:
        return value.lower()
    return value


def referral_value(referral: Referral, field: str) -> str:
    return _text(field, getattr(referral, REFERRAL_FIELD[field]))


def chart_value(chart: PatientChart, field: str) -> str:
    return _text(field, getattr(chart, field))


def _same(field: str, chart_text: str, referral_text: str) -> bool:
    """Case and spacing are not differences worth a person's time; accents and letters are."""
    if field == ReviewField.PHONE:
        return re.sub(r"\D", "", chart_text) == re.sub(r"\D", "", referral_text)
    return chart_text.casefold() == referral_text.casefold()


def _to_chart(field: str, text: str):
    if field == ReviewField.BIRTH_DATE:
        return date.fromisoformat(text) if text else None
    if field == ReviewField.SEX:
        return text if text in Sex.values else ""
    return text


def _token(values: list) -> str:
    return hashlib.sha256(orjson.dumps(values)).hexdigest()[:32]


def snapshot_digest(referral: Referral) -> str:
    values = [referral_value(referral, field) for field in REFERRAL_FIELD] + [referral.patient_mrn, referral.direction]
    return hashlib.sha256(orjson.dumps(values)).hexdigest()


# --- identity checks before a person's link ---------------------------------------------------

def _differs(field: str, chart: PatientChart, referral: Referral) -> bool:
    """Both sides know the field and say different things (a blank side never disagrees)."""
    ours, theirs = chart_value(chart, field), referral_value(referral, field)
    return bool(ours and theirs) and not _same(field, ours, theirs)


def identity_conflicts(referral: Referral, chart: PatientChart) -> list[str]:
    """The field codes that make this chart clearly another patient than the referral's ([] when
    linking needs no confirmation): the card numbers differ, or the birth date and the family name
    both differ. Family names compare folded, as the weak match does ("Côté" is "COTE")."""
    conflicts = []
    if _differs(ReviewField.HCN, chart, referral):
        conflicts.append(ReviewField.HCN.value)
    family, their_family = fold(chart.family), fold(referral.patient_family)
    if _differs(ReviewField.BIRTH_DATE, chart, referral) and family and their_family and family != their_family:
        conflicts += [ReviewField.BIRTH_DATE.value, ReviewField.FAMILY.value]
    return conflicts


def identity_rows(referral: Referral, chart: PatientChart) -> list[dict]:
    """The identity fields side by side, for the page that asks to confirm a link."""
    conflicts = identity_conflicts(referral, chart)
    return [
        {"field": field, "label": field.label, "chart": chart_value(chart, field),
         "referral": referral_value(referral, field), "differs": _differs(field, chart, referral),
         "conflict": field.value in conflicts}
        for field in IDENTITY_FIELDS
    ]


def link_token(referral: Referral, chart: PatientChart) -> str:
    return _token(["link", referral.pk, chart.pk] + [
        [chart_value(chart, field), referral_value(referral, field)] for field in IDENTITY_FIELDS
    ])


# --- candidates ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    MRN = "mrn"  # a sent copy's chart number
    STRONG = "strong"  # same HCN and birth date
    WEAK = "weak"  # same family name (folded) and birth date
    HCN_ONLY = "hcn_only"  # same card, birth date differs or unknown: check before linking

    chart: PatientChart
    kind: str


def candidates(referral: Referral, limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """Charts to suggest, surest first: MRN (sent copies), strong, weak, then HCN-only."""
    charts = PatientChart.objects.filter(clinic_id=referral.clinic_id).order_by("family_key", "given_key", "id")
    hcn = hcn_digits(referral.patient_hcn)
    birth_date = referral.patient_birth_date
    family = fold(referral.patient_family)
    found: list[Candidate] = []
    seen: set[int] = set()

    def add(queryset, kind):
        for chart in queryset.exclude(pk__in=seen)[: max(limit - len(found), 0)]:
            seen.add(chart.pk)
            found.append(Candidate(chart, kind))

    mrn = referral.patient_mrn.strip()
    if referral.direction == Direction.SENT and mrn:
        add(charts.filter(chart_number=mrn), Candidate.MRN)
    if hcn and birth_date:
        add(charts.filter(hcn=hcn, birth_date=birth_date), Candidate.STRONG)
    if family and birth_date:
        add(charts.filter(family_key=family, birth_date=birth_date), Candidate.WEAK)
    if hcn:
        add(charts.filter(hcn=hcn), Candidate.HCN_ONLY)
    return found


# --- automatic matching ----------------------------------------------------------------------

def _automatic_choice(referral: Referral) -> tuple[PatientChart | None, str]:
    """The chart to link without a person, or None and why a person decides (module docstring)."""
    charts = PatientChart.objects.filter(clinic_id=referral.clinic_id)
    birth_date = referral.patient_birth_date
    hcn = hcn_digits(referral.patient_hcn)
    strong = list(charts.filter(hcn=hcn, birth_date=birth_date).order_by("id")[:2]) if hcn and birth_date else []
    mrn = referral.patient_mrn.strip()
    by_mrn = charts.filter(chart_number=mrn).first() if referral.direction == Direction.SENT and mrn else None
    if by_mrn is not None:
        if _mrn_chart_disagrees(referral, by_mrn):
            return None, LinkReason.MRN_CONFLICT
        if len(strong) == 1 and strong[0].pk != by_mrn.pk:
            return None, LinkReason.MRN_OTHER_CHART  # two candidates: a person decides
        return by_mrn, LinkReason.MRN
    if not hcn:
        return None, LinkReason.NO_HCN
    if birth_date is None:
        return None, LinkReason.NO_BIRTH_DATE
    if len(strong) != 1:
        return None, LinkReason.SEVERAL_MATCHES if strong else LinkReason.NO_MATCH
    return strong[0], LinkReason.HCN_BIRTH_DATE


def _mrn_chart_disagrees(referral: Referral, chart: PatientChart) -> bool:
    """The chart a sent copy's chart number names is someone else's: its health card number, birth
    date or family name (folded) differs from the referral's, both sides knowing it."""
    if _differs(ReviewField.HCN, chart, referral) or _differs(ReviewField.BIRTH_DATE, chart, referral):
        return True
    family, their_family = fold(chart.family), fold(referral.patient_family)
    return bool(family and their_family and family != their_family)


def _locked_link(referral: Referral) -> ReferralPatientLink:
    """The referral's link row, created if missing, locked for this transaction."""
    link, _created = ReferralPatientLink.objects.select_for_update().get_or_create(
        referral=referral, defaults={"clinic_id": referral.clinic_id},
    )
    link.referral = referral
    return link


def match_referral(referral: Referral) -> ReferralPatientLink:
    """Link the referral automatically when the rules allow, else leave it waiting; on a linked
    chart, raise review items for what the referral says differently. Safe to repeat."""
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral.pk)
        link = _locked_link(referral)
        if link.chart_id is None and link.decided_at is None:
            chart, reason = _automatic_choice(referral)
            if chart is not None:
                link.chart, link.state, link.reason = chart, LinkState.AUTO_LINKED, reason
                link.save()
                record("patients.link.auto", clinic=referral.clinic, target=f"referral:{referral.pk}",
                       chart=chart.pk, reason=str(reason))
            else:
                state = LinkState.WAITING if candidates(referral, limit=1) else LinkState.NO_CANDIDATES
                if (link.state, link.reason) != (state, reason):
                    link.state, link.reason = state, reason
                    link.save()
                    record("patients.link.waiting", clinic=referral.clinic, target=f"referral:{referral.pk}",
                           state=str(state), reason=str(reason))
        if link.chart_id is not None:
            review_differences(link)
        link.checked_at = referral.updated_at
        link.snapshot_digest = snapshot_digest(referral)
        link.save(update_fields=["checked_at", "snapshot_digest", "updated_at"])
        return link


# --- differences -----------------------------------------------------------------------------

def review_differences(link: ReferralPatientLink) -> list[ChartReviewItem]:
    """Compare the linked chart with the referral: fill blank non-protected fields, raise (or
    refresh) an open review item for every other difference. Returns the items raised."""
    referral = link.referral
    chart = PatientChart.objects.select_for_update().get(pk=link.chart_id)
    items = list(ChartReviewItem.objects.filter(chart=chart, referral=referral))
    filled: list[str] = []
    raised: list[ChartReviewItem] = []
    for field in ReviewField.values:
        theirs = referral_value(referral, field)
        ours = chart_value(chart, field)
        open_item = next((i for i in items if i.field == field and i.state == ChartReviewItem.State.OPEN), None)
        # A version code belongs to its card: with another card number, the HCN item covers it.
        moot = not theirs or _same(field, ours, theirs) or (
            field == ReviewField.HCN_VERSION and chart.hcn != hcn_digits(referral.patient_hcn)
        )
        if moot:
            if open_item is not None:
                open_item.delete()  # the difference is gone; nothing was decided
            continue
        if field in FILLABLE_FIELDS and not ours:
            setattr(chart, field, _to_chart(field, theirs))
            filled.append(field)
            continue
        if any(i.field == field and i.referral_value == theirs and i.state != ChartReviewItem.State.OPEN for i in items):
            continue  # a person already answered this very value from this referral
        if open_item is None:
            raised.append(ChartReviewItem.objects.create(
                clinic_id=chart.clinic_id, chart=chart, referral=referral, field=field,
                chart_value=ours, referral_value=theirs,
            ))
        elif (open_item.chart_value, open_item.referral_value) != (ours, theirs):
            open_item.chart_value, open_item.referral_value = ours, theirs
            open_item.save(update_fields=["chart_value", "referral_value", "updated_at"])
            raised.append(open_item)
    if filled:
        chart.save(update_fields=filled)
        record("patients.chart.filled", clinic=chart.clinic, target=f"chart:{chart.pk}",
               referral=referral.pk, fields=filled)
    if raised:
        record("patients.review.raised", clinic=chart.clinic, target=f"chart:{chart.pk}",
               referral=referral.pk, fields=[item.field for item in raised])
    return raised


# --- a person's decisions --------------------------------------------------------------------

def _decided(link: ReferralPatientLink, user, chart, reason) -> None:
    link.chart, link.state, link.reason = chart, LinkState.LINKED_BY_PERSON if chart else LinkState.WAITING, reason
    link.decided_by, link.decided_at = user, timezone.now()
    link.checked_at, link.snapshot_digest = link.referral.updated_at, snapshot_digest(link.referral)
    link.save()


def link(referral: Referral, chart: PatientChart, user, confirmed: str = "") -> tuple[ReferralPatientLink, bool]:
    """A person links the referral to a chart of its clinic. Returns (link, changed): linking
    again to the same chart (a double submit) changes nothing; another chart raises AlreadyLinked.
    A chart whose identity disagrees (identity_conflicts) raises NeedsConfirmation unless
    `confirmed` is the link_token of the values the person saw."""
    if chart.clinic_id != referral.clinic_id:
        raise ValueError("the chart belongs to another clinic")
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral.pk)
        current = _locked_link(referral)
        if current.chart_id == chart.pk:
            return current, False
        if current.chart_id is not None:
            raise AlreadyLinked
        chart = PatientChart.objects.select_for_update().get(pk=chart.pk)
        conflicts = identity_conflicts(referral, chart)
        if conflicts and confirmed != link_token(referral, chart):
            raise NeedsConfirmation(link_token(referral, chart), conflicts)
        _decided(current, user, chart, LinkReason.MANUAL)
        extra = {"confirmed_conflicts": conflicts} if conflicts else {}
        record("patients.link.person", clinic=referral.clinic, actor=user, target=f"referral:{referral.pk}",
               chart=chart.pk, reason=LinkReason.MANUAL.value, **extra)
        review_differences(current)
        return current, True


def unlink(referral: Referral, user) -> tuple[ReferralPatientLink, bool]:
    """A person says the linked chart is the wrong one. Open review items of that pair go (they
    compared the wrong patient); the matcher will not link this referral on its own again."""
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral.pk)
        current = _locked_link(referral)
        if current.chart_id is None:
            return current, False
        old_chart = current.chart_id
        ChartReviewItem.objects.filter(
            referral=referral, chart_id=old_chart, state=ChartReviewItem.State.OPEN,
        ).delete()
        _decided(current, user, None, LinkReason.UNLINKED)
        record("patients.link.unlinked", clinic=referral.clinic, actor=user, target=f"referral:{referral.pk}",
               chart=old_chart)
        return current, True


def _recheck_waiting(chart: PatientChart) -> int:
    """A chart just gained its card number (created, or a card accepted): referrals of that card
    still waiting without a person's decision go back to the job, which links them if the rules
    now allow (e.g. the patient's second referral, once a person created the chart from the first)."""
    if not chart.hcn:
        return 0
    waiting = ReferralPatientLink.objects.filter(
        clinic_id=chart.clinic_id, chart__isnull=True, decided_at__isnull=True, referral__patient_hcn=chart.hcn,
    )
    referral_ids = list(waiting.values_list("referral_id", flat=True))
    count = ReferralPatientLink.objects.filter(referral_id__in=referral_ids).update(checked_at=None, snapshot_digest="")
    enqueue(referral_ids)
    return count


def next_chart_number(clinic) -> tuple[int, str]:
    last = PatientChart.objects.filter(clinic=clinic).aggregate(last=Max("sequence"))["last"] or 0
    return last + 1, f"H{last + 1:06d}"


def save_new_chart(chart: PatientChart) -> PatientChart:
    """Save a new chart, generating its chart number (H000001…) when it has none. Two charts
    created at once race for a number: the unique constraints decide and the loser takes the next."""
    if chart.chart_number:
        chart.save()
        return chart
    floor = 0
    for _attempt in range(20):
        sequence, _number = next_chart_number(chart.clinic)
        sequence = max(sequence, floor + 1)
        chart.sequence, chart.chart_number = sequence, f"H{sequence:06d}"
        try:
            with transaction.atomic():
                chart.save()
            return chart
        except IntegrityError:
            chart.pk = None
            floor = sequence  # e.g. a person typed that number for another chart
    raise IntegrityError("no free chart number")


def create_chart_from_referral(referral: Referral, user, chart_number: str = "") -> tuple[ReferralPatientLink, bool]:
    """A new chart pre-filled from the referral, linked to it. Returns (link, created); when the
    referral is already linked (a double submit), nothing is created."""
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral.pk)
        current = _locked_link(referral)
        if current.chart_id is not None:
            return current, False
        chart = PatientChart(clinic_id=referral.clinic_id, chart_number=chart_number.strip(), created_by=user)
        for field in ReviewField.values:
            setattr(chart, field, _to_chart(field, referral_value(referral, field)))
        save_new_chart(chart)
        record("patients.chart.created", clinic=referral.clinic, actor=user, target=f"chart:{chart.pk}",
               referral=referral.pk)
        _decided(current, user, chart, LinkReason.CREATED_FROM_REFERRAL)
        record("patients.link.person", clinic=referral.clinic, actor=user, target=f"referral:{referral.pk}",
               chart=chart.pk, reason=LinkReason.CREATED_FROM_REFERRAL.value)
        review_differences(current)  # e.g. an invalid sex code the chart could not take
        _recheck_waiting(chart)
        return current, True


def _decide_review(item: ChartReviewItem, user, state: str) -> tuple[ChartReviewItem, bool]:
    item = ChartReviewItem.objects.select_for_update().select_related("chart", "referral").get(pk=item.pk)
    if item.state != ChartReviewItem.State.OPEN:
        return item, False  # already decided (a double submit, or another person)
    item.state, item.decided_by, item.decided_at = state, user, timezone.now()
    item.save(update_fields=["state", "decided_by", "decided_at", "updated_at"])
    return item, True


def review_token(item: ChartReviewItem, chart: PatientChart) -> str:
    """Stamps what the person confirms: this item, the chart's current value, the referral's value."""
    return _token(["review", item.pk, item.field, chart_value(chart, item.field), item.referral_value])


def accept_review(item: ChartReviewItem, user, confirmed: str = "") -> tuple[ChartReviewItem, bool]:
    """The chart takes the referral's value. Accepting a new card number takes the referral's
    version code with it (a version code belongs to its card). Returns (item, changed).
    An identifier (CONFIRM_FIELDS) raises NeedsConfirmation unless `confirmed` is the
    review_token of the values the person saw."""
    with transaction.atomic():
        locked = ChartReviewItem.objects.select_for_update().get(pk=item.pk)
        if locked.state == ChartReviewItem.State.OPEN and locked.field in CONFIRM_FIELDS:
            chart = PatientChart.objects.select_for_update().get(pk=locked.chart_id)
            if confirmed != review_token(locked, chart):
                raise NeedsConfirmation(review_token(locked, chart), [locked.field])
        item, changed = _decide_review(item, user, ChartReviewItem.State.ACCEPTED)
        if not changed:
            return item, False
        chart = PatientChart.objects.select_for_update().get(pk=item.chart_id)
        replaced = bool(chart_value(chart, item.field))
        fields = [item.field]
        setattr(chart, item.field, _to_chart(item.field, item.referral_value))
        referral = item.referral
        if item.field == ReviewField.HCN:
            same_card = hcn_digits(referral.patient_hcn) == item.referral_value
            chart.hcn_version = referral_value(referral, ReviewField.HCN_VERSION) if same_card else ""
            fields.append(ReviewField.HCN_VERSION.value)
        chart.save(update_fields=fields)
        # Other open questions this answer settles (same value, e.g. from another referral).
        settled = 0
        for other in ChartReviewItem.objects.filter(chart=chart, state=ChartReviewItem.State.OPEN, field__in=fields):
            if _same(other.field, chart_value(chart, other.field), other.referral_value):
                other.delete()
                settled += 1
        record("patients.review.accepted", clinic=chart.clinic, actor=user, target=f"review:{item.pk}",
               chart=chart.pk, referral=item.referral_id, field=item.field, fields=fields, settled=settled,
               confirmed=item.field in CONFIRM_FIELDS, replaced=replaced)
        # A new card may now differ by its version code only; ask about that as usual.
        current = ReferralPatientLink.objects.filter(referral=referral, chart=chart).select_related("referral").first()
        if current is not None:
            review_differences(current)
        if item.field in (ReviewField.HCN, ReviewField.BIRTH_DATE):
            _recheck_waiting(chart)
        return item, True


def ignore_review(item: ChartReviewItem, user) -> tuple[ChartReviewItem, bool]:
    """The chart keeps its value; the same value from this referral is not asked again."""
    with transaction.atomic():
        item, changed = _decide_review(item, user, ChartReviewItem.State.IGNORED)
        if changed:
            record("patients.review.ignored", clinic=item.chart.clinic, actor=user, target=f"review:{item.pk}",
                   chart=item.chart_id, referral=item.referral_id, field=item.field)
        return item, changed


def with_confirm_tokens(items: list[ChartReviewItem], chart: PatientChart) -> list[ChartReviewItem]:
    """Ready review items of one chart for a page: each shows the chart's current value, and an
    identifier carries the token that confirms exactly what is shown (`confirm_token`, else "")."""
    for item in items:
        item.chart_value = chart_value(chart, item.field)
        item.confirm_token = review_token(item, chart) if item.field in CONFIRM_FIELDS else ""
    return items


# --- for the referral page -------------------------------------------------------------------

def panel_context(referral: Referral) -> dict:
    """What patients/referral_panel.html shows for one referral (already filtered by clinic)."""
    current = ReferralPatientLink.objects.filter(referral=referral).select_related("chart", "decided_by").first()
    linked = current is not None and current.chart_id is not None
    reviews = []
    if linked:
        reviews = list(
            ChartReviewItem.objects.filter(referral=referral, chart_id=current.chart_id, state=ChartReviewItem.State.OPEN)
            .order_by("id")
        )
        order = {field: n for n, field in enumerate(ReviewField.values)}
        reviews.sort(key=lambda item: (order.get(item.field, 99), item.id))
        with_confirm_tokens(reviews, current.chart)
    return {
        "referral": referral,
        "link": current,
        "linked": linked,
        "chart": current.chart if linked else None,
        "candidates": [] if linked else candidates(referral),
        "reviews": reviews,
        "protected_fields": [str(field) for field in PROTECTED_FIELDS],
    }
