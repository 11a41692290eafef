"""The peer's serializer and ``ModelViewSet``: read-only, the live contacts of one workspace."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from rest_framework import pagination, serializers, viewsets

from drf_peer.models import Contact

#: The contact's fields as the API shows them (the table's bookkeeping columns left out).
FIELDS = (
    "id",
    "first_name",
    "last_name",
    "emails",
    "phones",
    "company",
    "job_title",
    "addresses",
    "birthday",
    "notes",
    "tags",
    "version",
    "created_at",
    "updated_at",
)


class ContactSerializer(serializers.ModelSerializer):
    """Every field of ``FIELDS``, as DRF maps the model's fields."""

    class Meta:
        model = Contact
        fields = FIELDS


class CreatedCursor(pagination.CursorPagination):
    """Keyset pages of 20 by ``(created_at, id)``, the order of the list index."""

    page_size = 20
    ordering = ("created_at", "id")


class ContactViewSet(viewsets.ReadOnlyModelViewSet):
    """``GET /v1/contacts/{id}`` and ``GET /v1/contacts`` of ``settings.DRF_WORKSPACE``."""

    serializer_class = ContactSerializer
    pagination_class = CreatedCursor

    def get_queryset(self) -> QuerySet[Contact]:
        return Contact.objects.filter(workspace=settings.DRF_WORKSPACE, alive=True)


def ready(_request: HttpRequest) -> JsonResponse:
    """Readiness for the benchmark's start-up wait (no dependency checked)."""
    return JsonResponse({"status": "ready"})
