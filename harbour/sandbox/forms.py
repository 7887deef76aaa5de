"""Portal forms, labelled with Ocean's own words (the sandbox is English, like Ocean)."""
from django import forms

from harbour.sandbox.models import Integration, Referral

COPY_LABEL = "Allow a copy of the referral to be sent to this endpoint when a new referral is sent from this site"


class SignUpForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150)
    email = forms.EmailField(label="Email", required=False)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, min_length=8)


class SiteForm(forms.Form):
    name = forms.CharField(label="Site name", max_length=200)


class EncryptionForm(forms.Form):
    key = forms.CharField(
        label="Shared Encryption Key", required=False, max_length=16,
        help_text="16 characters with a digit, an upper-case letter, a lower-case letter and a punctuation character. "
        "Leave empty to have one generated. It is shown once: copy it and keep it safe.",
    )


class SiteFeaturesForm(forms.Form):
    cloud_connect = forms.BooleanField(label="Enable Ocean Cloud Connect", required=False)


class CloudKeyForm(forms.Form):
    key = forms.CharField(label="Shared Encryption Key", max_length=100, widget=forms.PasswordInput)


class IntegrationForm(forms.Form):
    kind = forms.ChoiceField(label="Integration Type", choices=[("eReferrals", "eReferrals")], initial="eReferrals", widget=forms.RadioSelect)
    name = forms.CharField(label="Integration Name", max_length=200)
    request_url = forms.CharField(label="Request URL", max_length=500)
    payload_version = forms.ChoiceField(label="Payload Type", choices=[("0.11.1", "FHIR v0.11.1"), ("0.10.0", "FHIR v0.10.0")], initial="0.11.1", widget=forms.RadioSelect)
    auth_type = forms.ChoiceField(label="Authentication", choices=[
        ("none", "No Authentication"),
        ("api_key", "API Key Authentication"),
        ("basic", "HTTP Basic Authentication"),
        ("oauth2", "OAuth2 Authentication"),
    ], initial="api_key")
    header_name = forms.CharField(label="Header Name", required=False, max_length=100)
    key = forms.CharField(label="Key", required=False, max_length=500)
    basic_username = forms.CharField(label="Username", required=False, max_length=200)
    basic_password = forms.CharField(label="Password", required=False, max_length=500, widget=forms.PasswordInput)
    oauth_token_url = forms.CharField(label="Token URL", required=False, max_length=500)
    oauth_client_id = forms.CharField(label="Client ID", required=False, max_length=200)
    oauth_secret = forms.CharField(label="Client Secret", required=False, max_length=500, widget=forms.PasswordInput)
    send_copy = forms.BooleanField(label=COPY_LABEL, required=False)


class ListingForm(forms.Form):
    name = forms.CharField(label="Listing name", max_length=200)
    accepts_ereferrals = forms.BooleanField(label="Accept eReferrals", required=False, initial=True)
    integration = forms.ModelChoiceField(label="Integration", queryset=Integration.objects.none(), required=False)
    external_service_id = forms.CharField(label="External Service ID", required=False, max_length=100)

    def __init__(self, *args, site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["integration"].queryset = Integration.objects.filter(site=site)
        self.fields["integration"].label_from_instance = lambda i: i.name


class CredentialForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)


class ReferralForm(forms.Form):
    listing = forms.CharField(label="Listing reference", max_length=100, help_text="The receiving listing's reference (see its site's Directory Listings).")
    family = forms.CharField(label="Patient last name", max_length=100)
    given = forms.CharField(label="Patient first name(s)", max_length=100, required=False)
    birth_date = forms.DateField(label="Birth date", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    gender = forms.ChoiceField(label="Sex", required=False, choices=[("", "-"), ("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown")])
    hcn = forms.CharField(label="Health card number", max_length=20, required=False)
    version_code = forms.CharField(label="Version code", max_length=2, required=False)
    phone = forms.CharField(label="Phone", max_length=40, required=False)
    email = forms.EmailField(label="Email", required=False)
    reason = forms.CharField(label="Reason for Referral", widget=forms.Textarea(attrs={"rows": 3}))
    history = forms.CharField(label="History", widget=forms.Textarea(attrs={"rows": 2}), required=False)
    priority = forms.ChoiceField(label="Priority", choices=[("routine", "Routine"), ("urgent", "Urgent")], initial="routine")
    attachment = forms.FileField(label="Attachment", required=False)

    def patient(self) -> dict:
        data = self.cleaned_data
        patient = {key: data.get(key) or "" for key in ["family", "given", "gender", "hcn", "version_code", "phone", "email"]}
        patient["birth_date"] = data["birth_date"].isoformat() if data.get("birth_date") else ""
        return patient


class EditReferralForm(forms.Form):
    family = forms.CharField(label="Patient last name", max_length=100)
    given = forms.CharField(label="Patient first name(s)", max_length=100, required=False)
    hcn = forms.CharField(label="Health card number", max_length=20, required=False)
    version_code = forms.CharField(label="Version code", max_length=2, required=False)
    reason = forms.CharField(label="Reason for Referral", widget=forms.Textarea(attrs={"rows": 3}))


class MessageForm(forms.Form):
    text = forms.CharField(label="Message", widget=forms.Textarea(attrs={"rows": 3}))


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label="Reason for declining", max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Enter the reason for declining."},
    )


class BookingForm(forms.Form):
    date = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}),
                           error_messages={"required": "Enter the appointment's date.", "invalid": "Enter the appointment's date as YYYY-MM-DD."})
    time = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time"}),
                           error_messages={"required": "Enter the appointment's time.", "invalid": "Enter the appointment's time as HH:MM."})
    duration = forms.IntegerField(label="Duration (minutes)", initial=30, error_messages={
        "required": "Enter the duration in minutes.", "invalid": "Enter the duration as a whole number of minutes."})
    confirmed = forms.BooleanField(label="Booking Confirmed (the patient confirmed the time)", required=False)
    instruction = forms.CharField(label="Instructions for the patient", required=False, max_length=1000,
                                  widget=forms.Textarea(attrs={"rows": 2}))


class BulkResendForm(forms.Form):
    refs = forms.CharField(label="Referral references (CSV, one per line, no header)", widget=forms.Textarea(attrs={"rows": 4}), required=False)
    csv_file = forms.FileField(label="or a CSV file", required=False)
    mode = forms.ChoiceField(label="Send as", widget=forms.RadioSelect, initial="update", choices=[
        ("new", "Send as a new referral"), ("update", "Send as an updated referral"),
    ])


FOLDER_CHOICES = Referral.Folder.choices
