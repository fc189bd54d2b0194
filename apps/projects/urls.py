from django.urls import path

from apps.projects import views

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("p/new/", views.project_create, name="project_create"),
    path("p/<slug:slug>/", views.project_home, name="project_home"),
    path("p/<slug:slug>/settings/", views.project_settings, name="project_settings"),
    path("p/<slug:slug>/members/", views.member_list, name="member_list"),
    path("p/<slug:slug>/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("p/<slug:slug>/members/<int:membership_id>/remove/", views.member_remove,
         name="member_remove"),
    path("p/<slug:slug>/members/invite/", views.member_invite, name="member_invite"),
    path("p/<slug:slug>/members/invitations/<int:invitation_id>/revoke/",
         views.member_invitation_revoke, name="member_invitation_revoke"),
    path("p/<slug:slug>/tokens/", views.token_list, name="token_list"),
    path("p/<slug:slug>/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]
