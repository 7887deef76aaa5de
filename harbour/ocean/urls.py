from django.urls import path

from harbour.ocean import views

app_name = "ocean"

urlpatterns = [
    path("connection-test/", views.test_connection, name="test_connection"),
    path("outbox/failures/", views.outbox_failures, name="outbox_failures"),
    path("outbox/<int:message_id>/retry/", views.retry_message, name="retry_message"),
]
