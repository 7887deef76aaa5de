"""What a person reads on the audit page for the codes Harbour records (actions, detail names, values).

Entries keep codes only (harbour.audit.log.record); the page translates them here. A code with no
label is shown as it is, and tests/audit/test_action_labels.py fails for any action recorded in the code
without one. Short words carry a context: the same msgid in Django's catalogues (auth's
"permission") would otherwise win over ours.
"""
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from harbour.clinics.forms import MANAGED_PERMISSIONS
from harbour.ocean.models import OutboundMessage
from harbour.patients.models import LinkReason, LinkState, ReviewField

ACTIONS = {
    "clinic.created": _("Clinic created"),
    "user.created": _("User added"),
    "user.permission_granted": _("Permission granted"),
    "user.permission_revoked": _("Permission revoked"),
    "ocean_settings.changed": _("Ocean settings changed"),
    "ocean_settings.inbound_key_generated": _("Inbound key generated"),
    "ocean.connection_tested": _("Connection to Ocean tested"),
    "ocean.outbound.retry_now": _("Update to Ocean sent again"),
    "ocean.outbound.refusal_handled": _("Ocean's refusal of an update marked as handled"),
    "ocean.document.fetch_again": _("Document fetched again from Ocean"),
    "inbound.reprocess": _("Inbound messages processed again"),
    "inbound.checked": _("Inbound message marked as checked"),
    "referral.document.downloaded": _("Referral document opened"),
    "patients.link.auto": _("Chart linked automatically"),
    "patients.link.person": _("Chart linked by a person"),
    "patients.link.waiting": _("Chart link waiting for a person"),
    "patients.link.unlinked": _("Chart unlinked"),
    "patients.chart.created": _("Chart created from a referral"),
    "patients.chart.filled": _("Empty chart fields filled from a referral"),
    "patients.review.raised": _("Differences to review"),
    "patients.review.accepted": _("Chart updated with the referral's value"),
    "patients.review.ignored": _("Difference ignored"),
}

DETAILS = {
    "fields": pgettext_lazy("audit detail", "fields"),
    "field": pgettext_lazy("audit detail", "field"),
    "permission": pgettext_lazy("audit detail", "permission"),
    "permissions": pgettext_lazy("audit detail", "permissions"),
    "user_id": pgettext_lazy("audit detail", "user"),
    "replaced": pgettext_lazy("audit detail", "replaced a value the chart had"),
    "confirmed": pgettext_lazy("audit detail", "confirmed by the person"),
    "confirmed_conflicts": pgettext_lazy("audit detail", "differences confirmed"),
    "change": pgettext_lazy("audit detail", "change"),
    "domains": pgettext_lazy("audit detail", "domains"),
    "referral": pgettext_lazy("audit detail", "referral"),
    "chart": pgettext_lazy("audit detail", "chart"),
    "state": pgettext_lazy("audit detail", "state"),
    "reason": pgettext_lazy("audit detail", "reason"),
    "result": pgettext_lazy("audit detail", "result"),
    "previous_state": pgettext_lazy("audit detail", "previous state"),
    "count": pgettext_lazy("audit detail", "number of messages"),
    "settled": pgettext_lazy("audit detail", "other differences settled"),
}

# A detail name that means something else under one action.
ACTION_DETAILS = {
    ("ocean_settings.inbound_key_generated", "replaced"): pgettext_lazy("audit detail", "replaced the previous key"),
}

_FIELDS = {
    "site_number": _("Site Number"),
    "server": _("Ocean server"),
    "custom_server_url": _("Custom server URL"),
    "oauth_client_id": _("Client ID"),
    "oauth_client_secret": _("Secret"),
    **dict(ReviewField.choices),
}
_CONNECTION_RESULTS = {
    "works": pgettext_lazy("audit value", "works"),
    "unreachable": pgettext_lazy("audit value", "Ocean unreachable"),
    "not_configured": pgettext_lazy("audit value", "credentials missing"),
    "wrong_client_id": pgettext_lazy("audit value", "unknown Client ID"),
    "wrong_secret": pgettext_lazy("audit value", "wrong secret"),
    "credentials_rejected": pgettext_lazy("audit value", "credentials refused"),
    "other": pgettext_lazy("audit value", "other failure"),
}
# Per detail name: its values' labels.
VALUES = {
    "fields": _FIELDS,
    "field": _FIELDS,
    "confirmed_conflicts": _FIELDS,
    "permission": dict(MANAGED_PERMISSIONS),
    "permissions": dict(MANAGED_PERMISSIONS),
    "state": dict(LinkState.choices),
    "reason": dict(LinkReason.choices),
    "previous_state": dict(OutboundMessage.State.choices),
    "result": _CONNECTION_RESULTS,
    "change": {"granted": pgettext_lazy("audit value", "granted"), "revoked": pgettext_lazy("audit value", "revoked")},
}
_YES_NO = {True: pgettext_lazy("audit value", "yes"), False: pgettext_lazy("audit value", "no")}


def action_label(action: str):
    return ACTIONS.get(action, action)


def details(action: str, recorded: dict) -> list[tuple[str, str]]:
    """(name, value) rows as a person reads them; unknown names and values stay as recorded."""
    rows = []
    for name, value in (recorded or {}).items():
        labels = VALUES.get(name, _YES_NO)
        if isinstance(value, (list, tuple)):
            shown = ", ".join(str(labels.get(item, item)) for item in value) or "—"
        elif isinstance(value, (bool, str)):
            shown = labels.get(value, value)
        else:
            shown = value
        rows.append((ACTION_DETAILS.get((action, name)) or DETAILS.get(name, name), shown))
    return rows
