from django.urls import include, path

from users.views import HealthView, IndexView

urlpatterns = [
    path("", IndexView.as_view(), name="index"),
    path("healthz", HealthView.as_view()),
    path("users/", include("users.urls")),
]
