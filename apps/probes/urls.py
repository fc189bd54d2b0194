from django.urls import path

from apps.probes import views

urlpatterns = [
    path("p/<slug:slug>/calibration/<slug:rubric_slug>/probes/", views.probe_start,
         name="probe_start"),
]
