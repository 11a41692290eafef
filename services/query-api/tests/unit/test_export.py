"""``GET /v1/contacts/export`` and its keyset walk, on the fakes of the read model."""

from __future__ import annotations

import datetime as dt
import io

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from contacts_exchange import read_csv, read_vcards
from contacts_http.rate_limits import RateLimitSettings
from query_api.entrypoints.app import create_app
from query_api.service_layer.export import export_resources
from query_api.service_layer.listing import ListFilters
from query_api.settings import Settings
from support.auth import TEST_AUTH, authorized

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


def test_an_export_while_the_process_streams_its_slots_is_a_503_with_retry_after(
    app, contacts, make_record
):
    contacts.add(make_record(first_name="Ada"))
    client = app.test_client()  # no preserved context: a streamed response keeps its own
    streaming = client.get("/v1/contacts/export", buffered=False)  # 1 slot (default): taken
    assert streaming.status_code == 200

    busy = client.get("/v1/contacts/export?format=csv")

    assert busy.status_code == 503
    assert busy.mimetype == "application/problem+json"
    assert busy.get_json()["type"] == "urn:contacts:problem:exports-busy"
    assert busy.headers["Retry-After"] == "2"  # QUERY_RETRY_AFTER_S
    assert client.get("/v1/contacts?limit=1").status_code == 200  # other routes are served
    streaming.close()  # as the server does when the response ends, or the client is cut
    assert client.get("/v1/contacts/export").status_code == 200


def test_an_export_gives_its_slot_back_whatever_ends_it(client, contacts, make_record):
    contacts.add(make_record(first_name="Ada"))
    contacts.down = True
    assert client.get("/v1/contacts/export").status_code == 503  # before the first byte
    contacts.down = False
    assert client.get("/v1/contacts/export?format=xlsx").status_code == 400
    assert client.head("/v1/contacts/export").status_code == 200

    response = client.get("/v1/contacts/export")

    assert response.status_code == 200
    assert b"Ada" in response.data


def test_the_stream_slots_are_a_setting(contacts, cache, statuses, outcomes, make_record):
    contacts.add(make_record(first_name="Ada"))
    settings = Settings.from_env({"QUERY_STREAM_SLOTS": "2"}).model_copy(
        update={"auth": TEST_AUTH, "rate_limits": RateLimitSettings(enabled=False)}
    )
    app = create_app(settings, contacts=contacts, cache=cache, statuses=statuses, outcomes=outcomes)
    client = authorized(app).test_client()
    held = [client.get("/v1/contacts/export", buffered=False) for _ in range(2)]

    assert [r.status_code for r in held] == [200, 200]
    assert client.get("/v1/contacts/export").status_code == 503
    for response in reversed(held):
        response.close()
