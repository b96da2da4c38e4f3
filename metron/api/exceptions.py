"""One JSON error shape for every API failure.

``{"error": {"status": 400, "code": "invalid", "message": "…", "fields": {…}}}``;
``fields`` appears only for validation errors and maps field names to messages.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_body(*, status_code: int, code: str, message: str, fields=None) -> dict:
    error = {"status": status_code, "code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large; send smaller batches."


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: logged and answered by Django's 500 path

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = error_body(
            status_code=response.status_code,
            code="invalid",
            message="Invalid input.",
            fields=detail,
        )
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = error_body(
            status_code=response.status_code,
            code=code if isinstance(code, str) else "error",
            message=str(detail),
        )
    return Response(body, status=response.status_code, headers=response.headers)


def json_not_found(request, exception=None):
    return JsonResponse(
        error_body(status_code=404, code="not_found", message="Not found."), status=404
    )


def json_server_error(request):
    return JsonResponse(
        error_body(
            status_code=500,
            code="server_error",
            message="Internal server error; the failure has been logged.",
        ),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
