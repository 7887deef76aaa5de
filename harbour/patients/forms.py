from django import forms
from django.utils.translation import gettext_lazy as _


def _token_or_nothing(value) -> str:
    """A confirmation token as posted; anything too long is no confirmation (never a form error:
    the confirmation page simply shows again)."""
    value = value or ""
    return value if len(value) <= 64 else ""


class ChartSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Name or health card number"), max_length=100, required=False,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )


class LinkForm(forms.Form):
    """A suggested chart's button sends `chart`; a person may also type a chart number."""

    chart = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    chart_number = forms.CharField(label=_("Chart number"), max_length=100, required=False)
    # Sent by the warning page's button when the chart's identity disagrees (matching.link_token).
    # Any other value, however long, is simply no confirmation: the warning page shows again.
    confirm = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_confirm(self):
        return _token_or_nothing(self.cleaned_data.get("confirm"))

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("chart") and not (cleaned.get("chart_number") or "").strip():
            raise forms.ValidationError(_("Choose a chart, or type its chart number."))
        return cleaned


class BackForm(forms.Form):
    """Where a review decision returns: the referral page (default) or the chart page."""

    back = forms.ChoiceField(choices=[("referral", "referral"), ("chart", "chart")], required=False)


class ReviewDecisionForm(BackForm):
    """A review decision. Copying an identifier into the chart also needs `confirm`, the token of
    the values the person confirmed (matching.review_token): filled by harbour.js after its prompt,
    or by the server's own confirmation page."""

    confirm = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_confirm(self):
        return _token_or_nothing(self.cleaned_data.get("confirm"))
