"""One shape for every API error: ``{"error": "..."}`` with the right status, never an HTML page."""

import logging

from django.utils.translation import gettext_lazy as _
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

SERVICE_UNAVAILABLE = _("The SMS service is unavailable: please try again shortly.")
NOT_JSON = _("The request body is not valid JSON.")
# What each status means to a person, for the errors that carry no message of their own.
MESSAGES = {
    400: _("Bad request."),
    403: _("Forbidden."),
    404: _("There is no such API address."),
    405: _("This method is not allowed here."),
    413: _("The request body is too large."),
    415: _("Send JSON (Content-Type: application/json)."),
    429: _("Too many requests from your address: please wait."),
    500: _("Server error: it has been logged, please try again later."),
    503: SERVICE_UNAVAILABLE,
}


def first_message(detail):
    """DRF's error detail (a string, a list or a dict of lists) as one sentence for a person."""
    if isinstance(detail, dict):
        field, inner = next(iter(detail.items()), ("", ""))
        message = first_message(inner)
        return message if field in ("detail", "non_field_errors", "") else f"{field}: {message}"
    if isinstance(detail, list):
        return first_message(detail[0]) if detail else ""
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, RedisError | BrokerError | ConnectionError):
        logger.warning("Redis or the broker is unreachable: %s", type(exc).__name__)
        return Response({"error": SERVICE_UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected bug: Django answers 500, and users/middleware.py makes it JSON
    if isinstance(exc, exceptions.ParseError):
        message = NOT_JSON
    elif isinstance(exc, exceptions.Throttled | exceptions.UnsupportedMediaType):
        message = MESSAGES[response.status_code]  # DRF's own text names neither the fix nor the limit
    else:
        message = first_message(response.data)
    response.data = {"error": message}
    return response
