from harbour.fhir import codes
from harbour.fhir.read import html_to_text, humanise_display


def test_every_v0_11_1_code_is_its_own_canonical_name():
    for code in codes.INBOUND_EVENTS | codes.OUTBOUND_EVENTS:
        assert codes.canonical_event(code) == code


def test_old_spellings_map_to_v0_11_1_names():
    assert codes.canonical_event("add-servicerequest") == "add-service-request"
    assert codes.canonical_event("notify-update-servicerequest") == "notify-update-service-request"
    assert codes.canonical_event("update-service-request") == "notify-update-service-request"
    assert codes.canonical_event("terminate-servicerequest") == "revoke-service-request"
    assert codes.canonical_event("notify-revoke-service-request") == "revoke-service-request"
    assert codes.canonical_event("add-communication") == "send-communication-from-requester"
    assert codes.canonical_event("send-communication-to-provider") == "send-communication-from-requester"
    assert codes.canonical_event("notify-add-servicerequest") == "notify-add-service-request"
    assert codes.canonical_event("notify-update-status") == "notify-update-process-request"
    assert codes.canonical_event("notify-update-appointment") == "notify-add-appointment"
    assert codes.canonical_event(" Add-Service-Request ") == "add-service-request"


def test_unknown_or_wrong_type_events_have_no_canonical_name():
    for code in ("something-else", "", None, 3, ["add-service-request"], {"code": "x"}):
        assert codes.canonical_event(code) is None


def test_system_suffix_ignores_host_scheme_and_trailing_bits():
    assert codes.system_suffix("http://localhost:8081/svc/fhir/v1/NamingSystem/id-site-number") == "id-site-number"
    assert codes.system_suffix("https://ocean.cognisantmd.com/svc/fhir/v1/NamingSystem/id-site-number/") == \
        "id-site-number"
    assert codes.system_suffix("https://x/NamingSystem/ca-on-patient-hcn?v=1#a") == "ca-on-patient-hcn"
    assert codes.system_suffix("id-form-reference") == "id-form-reference"
    assert codes.system_suffix(None) == codes.system_suffix(12) == ""
    assert codes.has_suffix("http://a/b/ID-Site-Number", codes.ID_SITE_NUMBER)


def test_profile_urls_follow_the_payload_version():
    assert codes.profile_url("Patient").endswith("ca-on-eReferral-profile-Patient|1.0.1")
    assert codes.profile_url("Task").endswith("|1.0.0")
    assert codes.profile_url("Patient", codes.PAYLOAD_V0_10_0).endswith("|1.0.0")


def test_ocean_system_is_rooted_at_the_server():
    assert codes.ocean_system("https://ocean.cognisantmd.com/", codes.ID_EREFERRAL_REFERENCE) == \
        "https://ocean.cognisantmd.com/svc/fhir/v1/NamingSystem/id-ereferral-reference"


def test_humanise_display():
    assert humanise_display("MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL") == "Mental health assessment and referral"
    assert humanise_display("Cardiology") == "Cardiology"
    assert humanise_display("MRI") == "MRI"
    assert humanise_display("") is None and humanise_display(None) is None


def test_html_to_text_is_plain():
    assert html_to_text("<b>Reason for Referral:</b> Back pain with no red flags&nbsp;") == \
        "Reason for Referral: Back pain with no red flags"
    assert html_to_text("line one<br>line&nbsp;two<p>three</p>") == "line one line two three"
    assert html_to_text("a &amp; b &lt; c") == "a & b < c"
    assert html_to_text("<script>alert(1)</script>ok") == "ok"
    assert html_to_text("&lt;b&gt;double&lt;/b&gt;") == "double"
    assert html_to_text("<div>   </div>&nbsp;") is None
    assert html_to_text(5) is None
