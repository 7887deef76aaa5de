from django import forms
from django.utils.translation import gettext_lazy as _


class ChartSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Name or health card number"), max_length=100, required=False,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )


class LinkForm(forms.Form):
    """A suggested chart's button sends `chart`; a person may also type a chart number."""

    chart = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    chart_number = forms.CharField(label=_("Chart number"), max_length=100, required=False)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("chart") and not (cleaned.get("chart_number") or "").strip():
            raise forms.ValidationError(_("Choose a chart, or type its chart number."))
        return cleaned


class BackForm(forms.Form):
    """Where a review decision returns: the referral page (default) or the chart page."""

    back = forms.ChoiceField(choices=[("referral", "referral"), ("chart", "chart")], required=False)
