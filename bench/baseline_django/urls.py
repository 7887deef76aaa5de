from django.http import HttpResponse, HttpResponseNotAllowed
from django.urls import path

from baseline_django.models import RawMessage


def receive(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    RawMessage.objects.create(raw=request.body)
    return HttpResponse(b'{"resourceType":"OperationOutcome"}', content_type="application/fhir+json")


urlpatterns = [path("public/ocean/fhir_bundles", receive)]
