"""Settings-page additions: test the connection to Ocean, and the outbox's failures with "retry now"."""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from harbour.audit.log import record
from harbour.clinics.access import current_clinic, staff_view
from harbour.clinics.models import ocean_settings_for

from .client import OceanClient
from .models import OutboundMessage
from .outbox import outbox_summary, problem_messages, retry_now

SETTINGS_PERMISSION = "clinics.manage_consultation_settings"


@require_POST
@staff_view(permission=SETTINGS_PERMISSION)
def test_connection(request):
    """Ask Ocean for a token and its site-number naming system; say in plain words what happened."""
    clinic = current_clinic(request)
    with OceanClient(ocean_settings_for(clinic)) as client:
        result = client.check_connection()
    record("ocean.connection_tested", clinic=clinic, actor=request.user, target=f"clinic:{clinic.pk}",
           result=result.code)
    (messages.success if result.ok else messages.error)(request, result.message)
    return redirect("clinics:ocean_settings")


@staff_view(permission=SETTINGS_PERMISSION)
def outbox_failures(request):
    clinic = current_clinic(request)
    return render(request, "ocean/outbox_failures.html", {
        "summary": outbox_summary(clinic),
        "problems": problem_messages(clinic)[:200],
    })


@require_POST
@staff_view(permission=SETTINGS_PERMISSION)
def retry_message(request, message_id: int):
    clinic = current_clinic(request)
    message = get_object_or_404(OutboundMessage, pk=message_id, clinic=clinic)
    if retry_now(message, request.user):
        messages.success(request, _("The message will be sent to Ocean again in a moment."))
    else:
        messages.info(request, _("This message is not waiting for a retry any more."))
    return redirect("ocean:outbox_failures")
