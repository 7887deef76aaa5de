from django.urls import path

from . import views

app_name = "patients"

urlpatterns = [
    path("", views.chart_list, name="charts"),
    path("<int:pk>/", views.chart_detail, name="chart"),
    path("referral/<int:referral_pk>/link/", views.link_chart, name="link"),
    path("referral/<int:referral_pk>/create/", views.create_chart, name="create_chart"),
    path("referral/<int:referral_pk>/unlink/", views.unlink_chart, name="unlink"),
    path("review/<int:pk>/accept/", views.accept_review, name="accept_review"),
    path("review/<int:pk>/ignore/", views.ignore_review, name="ignore_review"),
]
