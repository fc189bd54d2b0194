from django.urls import path

from apps.intake import views

urlpatterns = [
    path("p/<slug:slug>/datasets/upload/", views.dataset_upload, name="dataset_upload"),
]
