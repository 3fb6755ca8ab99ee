from django.http import JsonResponse
from django.urls import include, path

from users.views import HealthView, IndexView

urlpatterns = [
    path("", IndexView.as_view(), name="index"),
    path("healthz", HealthView.as_view()),
    path("users/", include("users.urls")),
]


# Errors outside the API views are JSON too: a client of this API never gets an HTML error page.
def not_found(request, exception=None):
    return JsonResponse({"error": "Not found"}, status=404)


def bad_request(request, exception=None):
    return JsonResponse({"error": "Bad request"}, status=400)


def server_error(request):
    return JsonResponse({"error": "Server error"}, status=500)


handler400 = bad_request
handler404 = not_found
handler500 = server_error
