from django.urls import path

from . import views

app_name = "referrals"

urlpatterns = [
    path("", views.referral_list, name="list"),
    path("<int:pk>/", views.referral_detail, name="detail"),
    path("inbound/", views.inbound_messages, name="inbound_messages"),
    path("inbound/reprocess/", views.reprocess_messages, name="reprocess"),
]
