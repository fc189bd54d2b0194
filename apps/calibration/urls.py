from django.urls import path

from apps.calibration import views, views_summary

P = "p/<slug:slug>/calibration/"

urlpatterns = [
    path(P, views_summary.calibration_index, name="calibration_index"),
    path(P + "<slug:rubric_slug>/judges/", views_summary.calibration_summary_fragment,
         name="calibration_summary"),
    path(P + "<slug:rubric_slug>/", views.calibration_dashboard, name="calibration_dashboard"),
    path(P + "<slug:rubric_slug>/report.json", views.calibration_json, name="calibration_json"),
    path(P + "<slug:rubric_slug>/notes/", views.calibration_note, name="calibration_note"),
]
