from django.urls import path

from apps.exports import views

P = "p/<slug:slug>/exports/"

urlpatterns = [
    path(P, views.export_list, name="export_list"),
    path(P + "new/", views.export_create, name="export_create"),
    path(P + "<int:export_id>/", views.export_detail, name="export_detail"),
    path(P + "<int:export_id>/download/", views.export_download, name="export_download"),
]
