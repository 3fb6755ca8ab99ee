from django.conf import settings
from django.http import JsonResponse
from django.utils import translation

from .exceptions import MESSAGES

API_PATHS = ("/users/", "/healthz")


# --8<-- [start:middleware]
class JSONErrorsMiddleware:
    """Every error under the API's paths is ``{"error": "..."}``, DEBUG on or off.

    DRF answers JSON for what goes wrong inside a view. Django answers the rest itself, with an HTML
    page, and with DEBUG on a page that shows the settings and every URL pattern: a Host header that is
    not in ALLOWED_HOSTS, a path that matches nothing, a crash. This middleware comes first in
    MIDDLEWARE, so it sees every answer on its way out and turns such a page into JSON.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(API_PATHS):
            return self.get_response(request)
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return json_error(request, 413)  # refused before a byte of the body is read
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return json_error(request, response.status_code, replacing=response)
        return response
        # --8<-- [end:middleware]


def json_error(request, status, replacing=None):
    """A JSON error in the request's language; the headers that tell a client what to do next
    (Allow, Retry-After) are kept from the answer it replaces."""
    generic = 500 if status >= 500 else 400
    with translation.override(translation.get_language_from_request(request)):
        message = str(MESSAGES.get(status, MESSAGES[generic]))
        response = JsonResponse({"error": message}, status=status, json_dumps_params={"ensure_ascii": False})
    for name in ("Allow", "Retry-After"):
        if replacing is not None and replacing.has_header(name):
            response[name] = replacing[name]
    return response
