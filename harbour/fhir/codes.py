"""Codes, systems and URLs of the Ocean eReferral contract (docs/ocean-contract.md §3, §4).

Ocean roots its naming systems and some extensions at the sending server's host, so
everything here that Ocean hosts is matched by its final path segment (``system_suffix``).
"""

from __future__ import annotations

# --- Message events (§3) ------------------------------------------------------

MESSAGE_EVENT_SYSTEM = "https://ehealthontario.ca/fhir/CodeSystem/message-event-code"

# Canonical event names are the v0.11.1 codes.
ADD_SERVICE_REQUEST = "add-service-request"
NOTIFY_ADD_SERVICE_REQUEST = "notify-add-service-request"
NOTIFY_UPDATE_SERVICE_REQUEST = "notify-update-service-request"
REVOKE_SERVICE_REQUEST = "revoke-service-request"
SEND_COMMUNICATION_FROM_REQUESTER = "send-communication-from-requester"
SEND_COMMUNICATION_FROM_PROVIDER = "send-communication-from-provider"
SEND_COMMUNICATION = "send-communication"
NOTIFY_ADD_PROCESS_REQUEST = "notify-add-process-request"
NOTIFY_UPDATE_PROCESS_REQUEST = "notify-update-process-request"
NOTIFY_ADD_APPOINTMENT = "notify-add-appointment"
NOTIFY_DATA_CORRECTION = "notify-data-correction"
NOTIFY_REPORT_SERVICE_REQUEST = "notify-report-service-request"

# Events Ocean sends to Harbour (§3.1) and Harbour sends to Ocean (§3.2).
INBOUND_EVENTS = frozenset({
    ADD_SERVICE_REQUEST,
    NOTIFY_ADD_SERVICE_REQUEST,
    NOTIFY_UPDATE_SERVICE_REQUEST,
    REVOKE_SERVICE_REQUEST,
    SEND_COMMUNICATION_FROM_REQUESTER,
})
OUTBOUND_EVENTS = frozenset({
    NOTIFY_ADD_PROCESS_REQUEST,
    NOTIFY_UPDATE_PROCESS_REQUEST,
    NOTIFY_ADD_APPOINTMENT,
    SEND_COMMUNICATION_FROM_PROVIDER,
    NOTIFY_DATA_CORRECTION,
})

# Older spellings (v0.10.0 / IG 0.10.1 / third-party code) -> canonical name.
# The v0.10-era appointment, status and patient events have no exact v0.11.1
# twin; they map to the v0.11.1 event with the same focus (§3.1 "map by focus").
OLD_EVENT_SPELLINGS: dict[str, str] = {
    "add-servicerequest": ADD_SERVICE_REQUEST,
    "notify-add-servicerequest": NOTIFY_ADD_SERVICE_REQUEST,
    "notify-update-servicerequest": NOTIFY_UPDATE_SERVICE_REQUEST,
    "update-service-request": NOTIFY_UPDATE_SERVICE_REQUEST,
    "terminate-servicerequest": REVOKE_SERVICE_REQUEST,
    "notify-revoke-service-request": REVOKE_SERVICE_REQUEST,
    "add-communication": SEND_COMMUNICATION_FROM_REQUESTER,
    "send-communication-to-provider": SEND_COMMUNICATION_FROM_REQUESTER,
    "add-appointment": NOTIFY_ADD_APPOINTMENT,
    "update-appointment": NOTIFY_ADD_APPOINTMENT,
    "notify-update-appointment": NOTIFY_ADD_APPOINTMENT,
    "notify-update-status": NOTIFY_UPDATE_PROCESS_REQUEST,
    "update-patient-data": NOTIFY_DATA_CORRECTION,
}

KNOWN_EVENTS = INBOUND_EVENTS | OUTBOUND_EVENTS | {SEND_COMMUNICATION, NOTIFY_REPORT_SERVICE_REQUEST}

EVENT_ALIASES: dict[str, str] = {**{code: code for code in KNOWN_EVENTS}, **OLD_EVENT_SPELLINGS}


def canonical_event(code: object) -> str | None:
    """The canonical (v0.11.1) event name for any known spelling, else None."""
    if not isinstance(code, str):
        return None
    return EVENT_ALIASES.get(code.strip().lower())


def is_old_event_spelling(code: object) -> bool:
    """True for a pre-v0.11.1 spelling (a clue that the payload is v0.10)."""
    return isinstance(code, str) and code.strip().lower() in OLD_EVENT_SPELLINGS


# --- Naming systems (§4.2), matched by suffix ---------------------------------

ID_EREFERRAL_REFERENCE = "id-ereferral-reference"
ID_REFERRAL_TARGET_REFERENCE = "id-referral-target-reference"
ID_SITE_NUMBER = "id-site-number"
ID_REFERRAL_TARGET_EXTERNAL_SERVICE = "id-referral-target-external-service"
ID_EXTERNAL_PATIENT_REFERENCE = "id-external-patient-reference"
ID_PRACTITIONER_USERNAME = "id-practitioner-username"
ID_FORM_REFERENCE = "id-form-reference"
ID_ATTACHMENT_REFERENCE = "id-attachment-reference"
CA_ON_PATIENT_HCN = "ca-on-patient-hcn"
CA_ON_LICENSE_PHYSICIAN = "ca-on-license-physician"
CA_ON_OHIP_BILLING_ID = "ca-on-ohip-billing-id"

# Canonical full systems, for building outbound resources.
OCEAN_NAMING_SYSTEM_PATH = "/svc/fhir/v1/NamingSystem/"
HCN_SYSTEM = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn"
CPSO_SYSTEM = "http://infoway-inforoute.ca/fhir/NamingSystem/ca-on-license-physician"
OHIP_BILLING_SYSTEM = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-ohip-billing-id"
V2_0203_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"


def ocean_system(server: str, suffix: str) -> str:
    """An Ocean naming system rooted at ``server`` (e.g. ``https://ocean.cognisantmd.com``)."""
    return server.rstrip("/") + OCEAN_NAMING_SYSTEM_PATH + suffix


# --- Extensions ---------------------------------------------------------------

EHO_STRUCTURE_DEFINITION = "http://ehealthontario.ca/fhir/StructureDefinition/"
EXT_REFERRAL_IDENTIFIER = EHO_STRUCTURE_DEFINITION + "ext-referral-identifier"  # v0.11.1 header
EXT_ID_MESSAGE_HEADER = EHO_STRUCTURE_DEFINITION + "ext-id-message-header"  # v0.10 header, OceanMD replies
EXT_HEALTH_CARD_VERSION_CODE = EHO_STRUCTURE_DEFINITION + "ext-id-health-card-version-code"
EXT_WAIT_TIME_MILESTONES = EHO_STRUCTURE_DEFINITION + "ext-ontario-clinical-wait-time-appointment-milestones"
EXT_ACCEPT_SERVICE_REQUEST_IMPORT = EHO_STRUCTURE_DEFINITION + "ext-accept-service-request-import"
# Ocean-hosted: ``{server}/svc/fhir/v1/StructureDefinition/ext-ocean-eform-item-visibility``.
EXT_OCEAN_EFORM_ITEM_VISIBILITY = "ext-ocean-eform-item-visibility"

# --- Profiles (§3) ------------------------------------------------------------

PROFILE_PREFIX = EHO_STRUCTURE_DEFINITION + "ca-on-eReferral-profile-"
# v0.11.1 bumps these four to |1.0.1; everything else stays |1.0.0 in both versions.
V0_11_1_BUMPED_TYPES = frozenset({"MessageHeader", "Patient", "ServiceRequest", "Location"})
PAYLOAD_V0_11_1 = "0.11.1"
PAYLOAD_V0_10_0 = "0.10.0"


def profile_url(resource_type: str, payload_version: str = PAYLOAD_V0_11_1) -> str:
    """The versioned profile URL Harbour puts in ``meta.profile``."""
    bumped = payload_version == PAYLOAD_V0_11_1 and resource_type in V0_11_1_BUMPED_TYPES
    return f"{PROFILE_PREFIX}{resource_type}|{'1.0.1' if bumped else '1.0.0'}"


# --- Tasks (§4.1, §5.1) -------------------------------------------------------

# OceanMD's own client sends this system (odd, but no IG URI was found; §7 #12).
TASK_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-TaskOutcome"
TASK_CODE_PROCESS_REQUEST = "process-request"
TASK_CODE_PROCESS_REQUEST_CONSULT = "process-request-consult"
TASK_CODE_REQUEST_FOR_INFORMATION = "request-for-information-for-requester"
TASK_STATUSES_OCEAN_HONOURS = frozenset({
    "requested", "received", "accepted", "in-progress", "on-hold", "ready",
    "rejected", "cancelled", "completed",
})

# --- Other codes --------------------------------------------------------------

SNOMED_SYSTEM = "http://snomed.info/sct"
FAMILY_PHYSICIAN_ROLE = "59058001"


# --- Helpers ------------------------------------------------------------------

def system_suffix(system: object) -> str:
    """Final path segment of a system or URL, so matching never depends on host or scheme.

    ``http://localhost:8081/svc/fhir/v1/NamingSystem/id-site-number`` -> ``id-site-number``.
    Query strings, fragments and trailing slashes are ignored; non-strings give "".
    """
    if not isinstance(system, str):
        return ""
    text = system.strip().split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return text.rsplit("/", 1)[-1]


def has_suffix(system: object, suffix: str) -> bool:
    """Case-insensitive comparison of ``system``'s final segment with ``suffix``."""
    return system_suffix(system).lower() == suffix.lower()
