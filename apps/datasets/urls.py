from django.urls import path

from apps.datasets import views

P = "p/<slug:slug>/datasets/"

urlpatterns = [
    path(P, views.dataset_list, name="dataset_list"),
    path(P + "<int:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path(P + "<int:dataset_id>/items/<int:item_id>/", views.item_detail, name="item_detail"),
]
