"""The sandbox server's URLs: Ocean's API paths (/svc/...), the portal, the JSON admin API."""
from django.contrib.auth import views as auth_views
from django.urls import include, path

from harbour.sandbox import api, fhir_api, oauth, views

app_name = "sandbox"

svc = [
    path("oauth2/token", oauth.token, name="oauth_token"),
    path("fhir/v1/$process-messages", fhir_api.process_messages, name="process_messages"),
    path("fhir/v1/ServiceRequest/<str:ref>/$letter", fhir_api.letter, name="letter"),
    path("fhir/v1/DocumentReference/<str:doc_id>/$binary", fhir_api.binary, name="binary"),
    path("fhir/v1/NamingSystem/id-site-number", fhir_api.naming_system_site_number, name="naming_system_site_number"),
]

admin_api = [
    path("users", api.create_user, name="api_users"),
    path("sites", api.create_site, name="api_sites"),
    path("sites/<str:number>", api.site_detail, name="api_site"),
    path("sites/<str:number>/encryption-key", api.encryption_key, name="api_encryption_key"),
    path("sites/<str:number>/site-features", api.site_features, name="api_site_features"),
    path("sites/<str:number>/cloud-connect/key", api.cloud_connect_key, name="api_cloud_connect_key"),
    path("sites/<str:number>/integrations", api.register_integration, name="api_integrations"),
    path("sites/<str:number>/listings", api.create_listing, name="api_listings"),
    path("sites/<str:number>/oauth-credentials", api.oauth_credential, name="api_oauth_credentials"),
    path("integrations/<int:pk>", api.integration_detail, name="api_integration"),
    path("integrations/<int:pk>/bulk-resend", api.bulk_resend, name="api_bulk_resend"),
    path("referrals", api.create_referral, name="api_referrals"),
    path("referrals/<str:ref>", api.referral_detail, name="api_referral"),
    path("referrals/<str:ref>/cancel", api.cancel_referral, name="api_referral_cancel"),
    path("referrals/<str:ref>/messages", api.message_referral, name="api_referral_message"),
    path("referrals/<str:ref>/edit", api.edit_referral, name="api_referral_edit"),
    path("referrals/<str:ref>/accept", api.accept_referral, name="api_referral_accept"),
    path("referrals/<str:ref>/decline", api.decline_referral, name="api_referral_decline"),
    path("referrals/<str:ref>/book", api.book_appointment, name="api_referral_book"),
    path("referrals/<str:ref>/cancel-appointment", api.cancel_appointment, name="api_referral_cancel_appointment"),
    path("deliveries/run", api.run_deliveries, name="api_run_deliveries"),
]

site = [
    path("", views.site_home, name="site_home"),
    path("admin/", views.admin_menu, name="admin_menu"),
    path("admin/account/", views.site_account, name="site_account"),
    path("admin/encryption/", views.encryption, name="encryption"),
    path("admin/features/", views.site_features, name="site_features"),
    path("admin/integrations/", views.integrations, name="integrations"),
    path("admin/integrations/new/", views.integration_new, name="integration_new"),
    path("admin/integrations/<int:pk>/", views.integration_detail, name="integration_detail"),
    path("admin/listings/", views.listings, name="listings"),
    path("admin/credentials/", views.credentials, name="credentials"),
    path("admin/credentials/oauth/", views.oauth_credentials, name="oauth_credentials"),
    path("cloud-connect/", views.cloud_connect, name="cloud_connect"),
    path("referrals/new/", views.referral_new, name="referral_new"),
    path("referrals/<str:ref>/", views.referral, name="referral"),
    path("referrals/<str:ref>/cancel/", views.referral_cancel, name="referral_cancel"),
    path("referrals/<str:ref>/message/", views.referral_message, name="referral_message"),
    path("referrals/<str:ref>/edit/", views.referral_edit, name="referral_edit"),
    path("referrals/<str:ref>/accept/", views.referral_accept, name="referral_accept"),
    path("referrals/<str:ref>/decline/", views.referral_decline, name="referral_decline"),
    path("referrals/<str:ref>/book/", views.referral_book, name="referral_book"),
    path("referrals/<str:ref>/cancel-appointment/", views.referral_cancel_appointment, name="referral_cancel_appointment"),
]

sandbox_patterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(template_name="sandbox/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("sites/new/", views.site_new, name="site_new"),
    path("site/<str:number>/", include(site)),
    path("svc/", include(svc)),
    path("sandbox-api/", include(admin_api)),
]

# The sandbox server's ROOT_URLCONF is this module: its patterns live in the "sandbox" namespace.
urlpatterns = [path("", include((sandbox_patterns, "sandbox")))]

handler403 = views.forbidden
handler404 = views.not_found
handler500 = views.server_error
