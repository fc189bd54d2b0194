from django.urls import path

from apps.rubrics import views, views_preview, views_versions

P = "p/<slug:slug>/rubrics/"
R = P + "<slug:rubric_slug>/"

urlpatterns = [
    path(P, views.rubric_list, name="rubric_list"),
    path(P + "new/", views.rubric_create, name="rubric_create"),
    path(P + "import/", views.rubric_import_view, name="rubric_import"),
    path(R, views.rubric_detail, name="rubric_detail"),
    path(R + "draft/", views.rubric_start_draft, name="rubric_start_draft"),
    path(R + "settings/", views.rubric_settings, name="rubric_settings"),
    path(R + "prompt/", views.rubric_prompt, name="rubric_prompt"),
    path(R + "preview/", views_preview.rubric_preview, name="rubric_preview"),
    path(R + "publish/", views.rubric_publish, name="rubric_publish"),
    path(R + "criteria/new/", views.criterion_new, name="criterion_new"),
    path(R + "criteria/<int:criterion_id>/", views.criterion_edit, name="criterion_edit"),
    path(R + "criteria/<int:criterion_id>/delete/", views.criterion_delete,
         name="criterion_delete"),
    path(R + "criteria/<int:criterion_id>/move/", views.criterion_move, name="criterion_move"),
    path(R + "notes/<int:note_id>/resolve/", views.rubric_note_resolve,
         name="rubric_note_resolve"),
    path(R + "versions/", views_versions.version_list, name="version_list"),
    path(R + "versions/compare/", views_versions.version_compare, name="version_compare"),
    path(R + "versions/<int:number>/", views_versions.version_detail, name="version_detail"),
    path(R + "versions/<int:number>/rubric.yaml", views_versions.version_yaml, name="version_yaml"),
]
