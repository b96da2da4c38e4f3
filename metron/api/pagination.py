from django.conf import settings
from rest_framework import exceptions, pagination

POSITIVE_INTEGER = "Use a whole number from 1."


def _is_positive_int(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) > 0


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=`` (capped at ``API_MAX_PAGE_SIZE``).

    A malformed ``page`` or ``page_size`` is a 400; a page past the end is a 404.
    """

    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not _is_positive_int(raw):
            raise exceptions.ValidationError({self.page_size_query_param: [POSITIVE_INTEGER]})
        return super().get_page_size(request)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings and not _is_positive_int(raw):
            raise exceptions.ValidationError({self.page_query_param: [POSITIVE_INTEGER]})
        return super().get_page_number(request, paginator)
