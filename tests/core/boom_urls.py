from django.urls import path


def boom(request):
    raise RuntimeError("secret-detail that must not reach the page")


urlpatterns = [path("boom/", boom)]
