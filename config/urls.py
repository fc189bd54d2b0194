from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.api.api import api
from apps.projects import views as project_views

urlpatterns = [
    path("accounts/login/", project_views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", project_views.signup, name="signup"),
    path("accounts/invitation/<str:token>/", project_views.invitation_accept_view,
         name="invitation_accept"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("apps.projects.urls")),
    path("", include("apps.rubrics.urls")),
    path("", include("apps.intake.urls")),
    path("", include("apps.datasets.urls")),
    path("", include("apps.judging.urls")),
    path("", include("apps.labeling.urls")),
    path("", include("apps.calibration.urls")),
    path("", include("apps.probes.urls")),
    path("", include("apps.exports.urls")),
]
