from django.urls import path

from harbour.clinics import views

app_name = "clinics"

urlpatterns = [
    path("consultations/ocean/", views.ocean_settings, name="ocean_settings"),
    path("consultations/ocean/inbound-key/", views.generate_inbound_key, name="generate_inbound_key"),
    path("users/", views.users, name="users"),
    path("users/add/", views.add_user, name="add_user"),
    path("users/<int:user_id>/permissions/", views.user_permissions, name="user_permissions"),
]
