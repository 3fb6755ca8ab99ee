from django.urls import include, path

from users.views import IndexView

urlpatterns = [
    path("", IndexView.as_view(), name="index"),
    path("users/", include("users.urls")),
]
