"""Routes of the DRF peer: the viewset under ``/v1/contacts`` (no trailing slash, as ours)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from drf_peer.views import ContactViewSet, ready

router = SimpleRouter(trailing_slash=False)
router.register("v1/contacts", ContactViewSet, basename="contact")

urlpatterns = [path("readyz", ready), *router.urls]
