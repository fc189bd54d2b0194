from django.urls import path

from apps.calibration import views, views_optimizer, views_summary, views_workbench

P = "p/<slug:slug>/calibration/"
W = P + "<slug:rubric_slug>/workbench/"

urlpatterns = [
    path(P, views_summary.calibration_index, name="calibration_index"),
    path(P + "<slug:rubric_slug>/judges/", views_summary.calibration_summary_fragment,
         name="calibration_summary"),
    path(P + "<slug:rubric_slug>/", views.calibration_dashboard, name="calibration_dashboard"),
    path(P + "<slug:rubric_slug>/report.json", views.calibration_json, name="calibration_json"),
    path(P + "<slug:rubric_slug>/notes/", views.calibration_note, name="calibration_note"),
    path(W, views_workbench.workbench, name="workbench"),
    path(W + "bulk/", views_workbench.workbench_bulk, name="workbench_bulk"),
    path(W + "draft/", views_workbench.workbench_edit, name="workbench_edit"),
    path(W + "examples/remove/", views_workbench.workbench_example_remove,
         name="workbench_example_remove"),
    path(W + "rule/", views_workbench.workbench_rule, name="workbench_rule"),
    path(W + "rescores/", views_workbench.workbench_rescore, name="workbench_rescore"),
    path(W + "rescores/<int:rescore_id>/", views_workbench.workbench_rescore_status,
         name="workbench_rescore_status"),
    path(W + "rescores/<int:rescore_id>/cancel/", views_workbench.workbench_rescore_cancel,
         name="workbench_rescore_cancel"),
    path(W + "optimizer/", views_optimizer.workbench_optimizer, name="workbench_optimizer"),
    path(W + "optimizer/start/", views_optimizer.workbench_optimize, name="workbench_optimize"),
    path(W + "optimizer/<int:optimizer_id>/cancel/", views_optimizer.workbench_optimizer_cancel,
         name="workbench_optimizer_cancel"),
    path(W + "optimizer/<int:optimizer_id>/apply/", views_optimizer.workbench_proposal_apply,
         name="workbench_proposal_apply"),
]
