"""The ``contacts`` table as an unmanaged Django model (Django never migrates it)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Contact(models.Model):
    """A row of ``contacts`` (migrations of services/contact-worker). The table's primary key
    is ``(workspace, id)``; the peer serves one workspace, so ``id`` alone identifies a row."""

    id = models.UUIDField(primary_key=True)
    workspace = models.TextField()
    first_name = models.CharField(max_length=100, null=True)
    last_name = models.CharField(max_length=100, null=True)
    emails = models.JSONField()
    phones = models.JSONField()
    company = models.CharField(max_length=200, null=True)
    job_title = models.CharField(max_length=200, null=True)
    addresses = models.JSONField()
    birthday = models.DateField(null=True)
    notes = models.CharField(max_length=5000, null=True)
    tags = ArrayField(models.TextField())
    version = models.BigIntegerField()
    alive = models.BooleanField()
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "contacts"
        app_label = "drf_peer"
