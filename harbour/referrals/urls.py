from django.urls import path

from . import views

app_name = "referrals"

urlpatterns = [
    path("", views.referral_list, name="list"),
    path("read-all/", views.mark_everything_read, name="mark_all_read"),
    path("<int:pk>/", views.referral_detail, name="detail"),
    path("<int:pk>/actions/<slug:action>/", views.referral_action, name="action"),
    path("<int:pk>/outbound/<int:message_id>/retry/", views.retry_outbound, name="retry_outbound"),
    path("<int:pk>/outbound/<int:message_id>/handled/", views.refusal_handled, name="refusal_handled"),
    path("<int:pk>/documents/<int:attachment_id>/", views.document, name="document"),
    path("<int:pk>/documents/<int:attachment_id>/fetch-again/", views.fetch_document_again, name="fetch_again"),
    path("inbound/", views.inbound_messages, name="inbound_messages"),
    path("inbound/reprocess/", views.reprocess_messages, name="reprocess"),
    path("inbound/checked/", views.mark_checked, name="mark_checked"),
]
