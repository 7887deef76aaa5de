"""Every staff URL of Harbour, and who may use it: the table the hostile matrix checks.

The URL resolver is walked (`staff_urls()`); each pattern's view must be listed in VIEWS with
the permission it needs, the methods it answers, and which object kind fills each URL argument.
A new URL whose view is missing here, or whose argument has no kind, fails
tests/hostile/test_staff_matrix.py::test_every_staff_url_is_in_the_table: add a line below.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

# Who may use a view, besides being signed-in staff of the host's clinic.
STAFF = "any staff member"
SETTINGS = "clinics.manage_consultation_settings"
USERS = "clinics.manage_clinic_users"
SETTINGS_OR_USERS = "either administrator permission"

# The roles (tests/hostile/world.py) that hold each requirement.
ALLOWED_ROLES = {
    STAFF: {"staff", "settings_only", "users_only", "admin"},
    SETTINGS: {"settings_only", "admin"},
    USERS: {"users_only", "admin"},
    SETTINGS_OR_USERS: {"settings_only", "users_only", "admin"},
}

# URL prefixes outside the matrix: Django's own apps, the machine endpoint, probes.
EXCLUDED = ("admin/", "i18n/", "accounts/", "public/ocean/", "healthz", "readyz")

GET, POST = frozenset({"GET"}), frozenset({"POST"})
BOTH = GET | POST


@dataclass(frozen=True)
class Rule:
    needs: str
    methods: frozenset
    ids: tuple[tuple[str, str], ...] = ()  # (URL argument, object kind in world.py)

    @property
    def id_kinds(self) -> dict[str, str]:
        return dict(self.ids)


# view (module.function) -> Rule. Keep it explicit: this is the access policy, read by people.
VIEWS: dict[str, Rule] = {
    "harbour.core.views.home": Rule(STAFF, GET),
    # Settings > Consultations > Ocean, the users page, the audit log.
    "harbour.clinics.views.ocean_settings": Rule(SETTINGS, BOTH),
    "harbour.clinics.views.generate_inbound_key": Rule(SETTINGS, POST),
    "harbour.clinics.views.users": Rule(USERS, GET),
    "harbour.clinics.views.add_user": Rule(USERS, POST),
    "harbour.clinics.views.user_permissions": Rule(USERS, POST, (("user_id", "user"),)),
    "harbour.audit.views.log": Rule(SETTINGS_OR_USERS, GET),
    # Ocean: connection test and the outbox's failures.
    "harbour.ocean.views.test_connection": Rule(SETTINGS, POST),
    "harbour.ocean.views.outbox_failures": Rule(SETTINGS, GET),
    "harbour.ocean.views.retry_message": Rule(SETTINGS, POST, (("message_id", "outbound"),)),
    # Referrals.
    "harbour.referrals.views.referral_list": Rule(STAFF, GET),
    "harbour.referrals.views.referral_detail": Rule(STAFF, GET, (("pk", "referral"),)),
    "harbour.referrals.views.inbound_messages": Rule(STAFF, GET),
    "harbour.referrals.views.reprocess_messages": Rule(SETTINGS, POST),
    "harbour.referrals.views.mark_checked": Rule(SETTINGS, POST),
    "harbour.referrals.views.mark_everything_read": Rule(STAFF, POST),
    "harbour.referrals.views.referral_action": Rule(STAFF, POST, (("pk", "referral"), ("action", "action"))),
    "harbour.referrals.views.retry_outbound": Rule(STAFF, POST, (("pk", "referral"), ("message_id", "outbound"))),
    "harbour.referrals.views.refusal_handled": Rule(STAFF, POST, (("pk", "referral"), ("message_id", "outbound"))),
    "harbour.referrals.views.fetch_document_again": Rule(
        STAFF, POST, (("pk", "referral"), ("attachment_id", "attachment"))),
    "harbour.referrals.views.document": Rule(STAFF, GET, (("pk", "referral"), ("attachment_id", "letter"))),
    # Patients: charts and the patient panel's actions.
    "harbour.patients.views.chart_list": Rule(STAFF, GET),
    "harbour.patients.views.chart_detail": Rule(STAFF, GET, (("pk", "chart"),)),
    "harbour.patients.views.link_chart": Rule(STAFF, POST, (("referral_pk", "referral"),)),
    "harbour.patients.views.create_chart": Rule(STAFF, POST, (("referral_pk", "referral"),)),
    "harbour.patients.views.unlink_chart": Rule(STAFF, POST, (("referral_pk", "referral"),)),
    "harbour.patients.views.accept_review": Rule(STAFF, POST, (("pk", "review"),)),
    "harbour.patients.views.ignore_review": Rule(STAFF, POST, (("pk", "review"),)),
}

# URL argument kinds that are not database ids, and the value the matrix uses.
LITERAL_KINDS = {"action": "accept"}


@dataclass(frozen=True)
class StaffURL:
    route: str  # e.g. "referrals/<int:pk>/"
    name: str  # e.g. "referrals:detail"
    view: str  # module.function
    arguments: tuple[str, ...]

    @property
    def test_id(self) -> str:
        return self.name or self.route


def _view_name(callback) -> str:
    inner = getattr(callback, "view_class", None) or callback
    return f"{inner.__module__}.{inner.__name__}"


def _walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _walk(entry.url_patterns, route, ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else ""
            yield route, name, entry


def staff_urls() -> list[StaffURL]:
    """Every URL pattern of harbour.urls outside EXCLUDED."""
    found = []
    for route, name, entry in _walk(get_resolver("harbour.urls").url_patterns):
        if route.lstrip("^").startswith(EXCLUDED):
            continue
        arguments = tuple(entry.pattern.converters) if hasattr(entry.pattern, "converters") else ()
        if not arguments and getattr(entry.pattern, "regex", None) is not None:
            arguments = tuple(entry.pattern.regex.groupindex)
        found.append(StaffURL(route, name, _view_name(entry.callback), arguments))
    return found


def unknown(url: StaffURL) -> str | None:
    """Why the matrix cannot test this URL, or None when the table covers it."""
    rule = VIEWS.get(url.view)
    if rule is None:
        return f"{url.route} ({url.view}): view missing from tests/hostile/urlmap.py VIEWS"
    missing = [arg for arg in url.arguments if arg not in rule.id_kinds]
    if missing:
        return f"{url.route} ({url.view}): no object kind for URL argument(s) {missing}"
    return None
