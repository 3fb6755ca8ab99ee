"""One shape for every API error: ``{"error": "..."}`` with the right status, never an HTML page."""

import logging

from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

SERVICE_UNAVAILABLE = (
    "短信服务暂时不可用,请稍后再试 / the SMS service is unavailable, please try again shortly"
)


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
        return None  # an unexpected bug: Django's handler500 answers (JSON, see renranapi/urls.py)
    if isinstance(exc, exceptions.Throttled):
        message = "请求过于频繁,请稍后再试 / too many requests from your address, please wait"
    elif isinstance(exc, exceptions.ParseError):
        message = "请求体不是有效的 JSON / the request body is not valid JSON"
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        message = "请以 JSON 发送 (Content-Type: application/json) / send JSON"
    else:
        message = first_message(response.data)
    response.data = {"error": message}
    return response
