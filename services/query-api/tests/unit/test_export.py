"""``GET /v1/contacts/export`` and its keyset walk, on the fakes of the read model."""

from __future__ import annotations

import datetime as dt
import io

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from contacts_exchange import read_csv, read_vcards
from query_api.service_layer.export import export_resources
from query_api.service_layer.listing import ListFilters

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_the_walk_reads_every_page_once_in_creation_order(contacts, make_record):
    records = [make_record(created_at=T0 + dt.timedelta(seconds=i % 3)) for i in range(7)]
    for record in records:
        contacts.add(record)

    ids = [r["id"] for r in export_resources(WS, ListFilters(), contacts=contacts, page_size=2)]

    expected = sorted(records, key=lambda r: (r.created_at, r.contact_id))
    assert ids == [r.contact_id for r in expected]


def test_vcard_export_holds_the_filtered_contacts_and_reads_back(client, contacts, make_record):
    contacts.add(make_record(first_name="Ada", last_name="Lovelace", tags=["x"]))
    contacts.add(make_record(first_name="Grace", last_name="Hopper", tags=["y"]))

    response = client.get("/v1/contacts/export?tag=x")

    assert response.status_code == 200
    assert response.content_type == "text/vcard; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="contacts.vcf"'
    [record] = list(read_vcards(io.BytesIO(response.data)))
    assert (record.data["first_name"], record.data["last_name"]) == ("Ada", "Lovelace")


def test_csv_export_reads_back(client, contacts, make_record):
    contacts.add(make_record(first_name="Ada", last_name="Lovelace", tags=["x"]))

    response = client.get("/v1/contacts/export?format=csv")

    assert response.status_code == 200
    assert response.content_type.startswith("text/csv")
    [record] = list(read_csv(io.BytesIO(response.data)))
    assert record.data["first_name"] == "Ada"


def test_an_unknown_format_is_a_400_naming_it(client):
    response = client.get("/v1/contacts/export?format=xlsx")

    assert response.status_code == 400
    assert "format" in response.get_json()["errors"]
