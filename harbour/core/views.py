from django.shortcuts import render

from harbour.clinics.access import staff_view


@staff_view
def home(request):
    return render(request, "core/home.html")
