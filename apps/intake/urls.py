from django.urls import path

from apps.intake import views

urlpatterns = [
    path("p/<slug:slug>/datasets/upload/", views.dataset_upload, name="dataset_upload"),
    path("p/<slug:slug>/datasets/imports/<int:job_id>/", views.import_detail,
         name="import_detail"),
]
