from django.core.exceptions import DisallowedHost
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from harbour.clinics.access import staff_view


@staff_view
def home(request):
    return render(request, "core/home.html")


def bad_request(request, exception):
    """Django's 400 (a Host header not in ALLOWED_HOSTS or not a host name, another suspicious request).

    Raised by the middleware before the view runs, so the intake endpoint's own answers do not
    cover it: Ocean gets an OperationOutcome there like for every other refusal, people get a
    translated page. Neither repeats what was sent (the Host header is the sender's text).
    """
    if _is_intake_path(request.path_info):
        from harbour.intake.outcome import outcome_response

        if isinstance(exception, DisallowedHost):
            text = ("The Host header is not one this server answers to: post to the clinic's domain "
                    "as registered in Ocean.")
        else:
            text = "The request was refused as malformed."
        return outcome_response(400, "invalid", text)
    return render(request, "400.html", {"wrong_host": isinstance(exception, DisallowedHost)}, status=400)


def _is_intake_path(path: str) -> bool:
    try:
        intake = reverse("intake:fhir_bundles")
    except NoReverseMatch:
        return False
    return path.rstrip("/") == intake.rstrip("/")
