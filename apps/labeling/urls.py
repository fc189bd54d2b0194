from django.urls import path

from apps.labeling import views

P = "p/<slug:slug>/labelling/"
S = P + "<int:session_id>/"

urlpatterns = [
    path(P, views.session_list, name="session_list"),
    path(P + "new/", views.session_create, name="session_create"),
    path(P + "import/", views.labels_import, name="labels_import"),
    path(P + "datasets/<int:dataset_id>/labels/", views.dataset_labels_export,
         name="dataset_labels_export"),
    path(S, views.session_detail, name="session_detail"),
    path(S + "close/", views.session_close, name="session_close"),
    path(S + "adjudicate/", views.adjudicate, name="adjudicate"),
    path(S + "export/", views.session_export, name="session_export"),
    path(S + "label/", views.label_screen, name="label_screen"),
    path(S + "skip/", views.label_skip, name="label_skip"),
    path(S + "undo/", views.label_undo, name="label_undo"),
    path(S + "mine/", views.label_history, name="label_history"),
    path(S + "mine/<int:item_id>/", views.label_edit, name="label_edit"),
]
