from django.urls import path

from apps.judging import views

P = "p/<slug:slug>/runs/"
R = P + "<int:run_id>/"

urlpatterns = [
    path(P, views.run_list, name="run_list"),
    path(P + "new/", views.run_start, name="run_start"),
    path(R, views.run_detail, name="run_detail"),
    path(R + "progress/", views.run_progress_partial, name="run_progress"),
    path(R + "cancel/", views.run_cancel, name="run_cancel"),
    path(R + "resume/", views.run_resume, name="run_resume"),
    path(R + "retry/", views.run_retry_failed, name="run_retry_failed"),
    path(R + "judgments/<int:judgment_id>/raw/", views.judgment_raw, name="judgment_raw"),
]
