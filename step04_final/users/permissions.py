from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission


class SameOriginOnly(BasePermission):
    """Refuse a request that a browser made for a page of another site (its Origin header says so).

    Sending a code costs money and reaches a stranger's phone, so no other site's page may make a
    visitor's browser do it (CSRF). Only JSON is accepted, which a plain form or <img> cannot send, and
    this check stops the rest. A client that is not a browser (curl, an app) sends no Origin.
    """

    message = _("Requests from pages of other sites are refused.")

    def has_permission(self, request, view):
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        own = f"{request.scheme}://{request.get_host()}"
        return origin == own or origin in settings.CSRF_TRUSTED_ORIGINS
