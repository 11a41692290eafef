"""``GET /v1/imports/{id}`` and its use case, on fakes of the report store and the outcome log."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from contacts_domain.imports import ImportProblem, ImportReport
from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from contacts_http import PROBLEM_JSON
from contacts_http.auth import AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from query_api.entrypoints.app import create_app
from query_api.service_layer import imports
from query_api.service_layer.imports import ImportReportUnavailable, ImportStatus
from query_api.service_layer.ports import ReadModelUnavailable
from query_api.service_layer.records import ImportOutcomes
from query_api.settings import Settings

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def report(import_id: str | None = None, **overrides) -> ImportReport:
    values = {
        "import_id": import_id or str(uuid.uuid4()),
        "format": "vcard",
        "state": "queued",
        "received": 6,
        "accepted": 4,
        "invalid": 2,
        "failed": 0,
        "created_at": T0,
        "errors": (
            ImportProblem(2, 7, "emails.0.value", "Not a valid email address."),
            ImportProblem(5, None, "_card", "A contact needs a first or last name."),
        ),
        "repaired": 1,
        "warnings": (
            ImportProblem(
                3, 12, "phones.0.value", "Not a valid phone number. Dropped the phone number."
            ),
        ),
    }
    return ImportReport(**{**values, **overrides})


@pytest.mark.parametrize(
    ("accepted", "applied", "rejected", "pending", "progress"),
    [
        (4, 0, 0, 4, "pending"),
        (4, 2, 1, 1, "pending"),
        (4, 3, 1, 0, "completed"),
        (0, 0, 0, 0, "completed"),  # nothing valid in the file: nothing to wait for
        (2, 3, 1, 0, "completed"),  # more outcomes than accepted records: never negative
    ],
)
def test_pending_and_status_follow_the_outcomes(accepted, applied, rejected, pending, progress):
    status = ImportStatus(
        report(accepted=accepted), ImportOutcomes(applied, rejected, {"x": rejected})
    )

    assert (status.pending, status.progress) == (pending, progress)
    assert status.to_dict()["pending"] == pending
    assert status.to_dict()["status"] == progress


@pytest.mark.parametrize(
    ("state", "lease", "shown"),
    [
        ("queuing", True, "queuing"),  # the command API is still queuing its records
        ("queuing", False, "interrupted"),  # the process queuing it stopped: no lease any more
        ("queued", False, "queued"),  # the lease is only read while the report says queuing
        ("failed", False, "failed"),
    ],
)
def test_a_queuing_report_without_its_lease_is_shown_interrupted(
    import_reports, import_outcomes, state, lease, shown
):
    stored = report(state=state)
    import_reports.reports[stored.import_id] = stored
    if lease:
        import_reports.leases.add((WS, stored.import_id))

    status = imports.get_import(
        WS, stored.import_id, reports=import_reports, outcomes=import_outcomes
    )

    assert status is not None
    assert status.state == status.to_dict()["state"] == shown
    assert status.progress == "pending"  # 4 accepted, none applied yet


def test_the_use_case_adds_the_outcomes_to_the_report(import_reports, import_outcomes):
    stored = report()
    import_reports.reports[stored.import_id] = stored
    import_outcomes.outcomes[stored.import_id] = ImportOutcomes(2, 1, {"email_conflict": 1})

    status = imports.get_import(
        WS, stored.import_id, reports=import_reports, outcomes=import_outcomes
    )

    assert status == ImportStatus(stored, ImportOutcomes(2, 1, {"email_conflict": 1}))


def test_dead_lettered_records_are_counted_and_complete_the_import(import_reports, import_outcomes):
    stored = report(accepted=4)
    import_reports.reports[stored.import_id] = stored
    import_outcomes.outcomes[stored.import_id] = ImportOutcomes(2, 1, {"email_conflict": 1})
    import_reports.dead["default"][stored.import_id] = 1

    status = imports.get_import(
        WS, stored.import_id, reports=import_reports, outcomes=import_outcomes
    )

    assert status is not None
    assert (status.dead_lettered, status.pending, status.progress) == (1, 0, "completed")
    assert status.to_dict()["dead_lettered"] == 1


def test_an_unknown_import_does_not_read_the_database(import_reports, import_outcomes):
    assert imports.get_import(WS, "x", reports=import_reports, outcomes=import_outcomes) is None
    assert import_outcomes.reads == 0


def test_redis_down_is_report_unavailable(import_reports, import_outcomes):
    import_reports.down = True

    with pytest.raises(ImportReportUnavailable):
        imports.get_import(WS, "x", reports=import_reports, outcomes=import_outcomes)


def test_database_down_is_read_model_unavailable(import_reports, import_outcomes):
    stored = report()
    import_reports.reports[stored.import_id] = stored
    import_outcomes.down = True

    with pytest.raises(ReadModelUnavailable):
        imports.get_import(WS, stored.import_id, reports=import_reports, outcomes=import_outcomes)


def test_get_import_answers_the_report_and_the_outcomes(client, import_reports, import_outcomes):
    stored = report()
    import_reports.reports[stored.import_id] = stored
    import_outcomes.outcomes[stored.import_id] = ImportOutcomes(
        2, 1, {"name_required": 0, "email_conflict": 1}
    )

    response = client.get(f"/v1/imports/{stored.import_id}")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "id": stored.import_id,
        "format": "vcard",
        "state": "queued",
        "status": "pending",
        "received": 6,
        "accepted": 4,
        "invalid": 2,
        "failed": 0,
        "applied": 2,
        "rejected": 1,
        "dead_lettered": 0,
        "pending": 1,
        "rejected_reasons": {"email_conflict": 1, "name_required": 0},
        "created_at": "2026-05-01T12:00:00+00:00",
        "errors": [
            {
                "position": 2,
                "line": 7,
                "field": "emails.0.value",
                "message": "Not a valid email address.",
            },
            {
                "position": 5,
                "line": None,
                "field": "_card",
                "message": "A contact needs a first or last name.",
            },
        ],
        "errors_truncated": False,
        "repaired": 1,
        "warnings": [
            {
                "position": 3,
                "line": 12,
                "field": "phones.0.value",
                "message": "Not a valid phone number. Dropped the phone number.",
            }
        ],
        "warnings_truncated": False,
    }


def test_a_failed_import_says_failed_in_state_while_status_completes(
    client, import_reports, import_outcomes
):
    stored = report(state="failed", accepted=2, failed=2, warnings_truncated=True)
    import_reports.reports[stored.import_id] = stored
    import_outcomes.outcomes[stored.import_id] = ImportOutcomes(2, 0, {})

    body = client.get(f"/v1/imports/{stored.import_id}").get_json()

    assert (body["state"], body["status"], body["failed"], body["pending"]) == (
        "failed",
        "completed",
        2,
        0,
    )
    assert body["warnings_truncated"] is True


@pytest.mark.parametrize(
    "import_id",
    [str(uuid.uuid4()), "nope", str(uuid.uuid4()).upper()],
    ids=["unknown", "malformed", "upper-case"],
)
def test_unknown_or_malformed_import_is_404_saying_how_long_reports_last(client, import_id):
    response = client.get(f"/v1/imports/{import_id}")

    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    assert "7 days" in response.get_json()["detail"]


@pytest.mark.parametrize("down", ["import_reports", "import_outcomes"])
def test_an_outage_is_503_with_retry_after(client, import_reports, import_outcomes, down):
    stored = report()
    import_reports.reports[stored.import_id] = stored
    {"import_reports": import_reports, "import_outcomes": import_outcomes}[down].down = True

    response = client.get(f"/v1/imports/{stored.import_id}")

    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["Retry-After"] == str(Settings().retry_after_s)


def test_unknown_query_parameters_are_400(client):
    assert client.get(f"/v1/imports/{uuid.uuid4()}?verbose=1").status_code == 400


def test_only_the_import_scope_reads_imports(import_reports, import_outcomes):
    reader, importer = new_api_key(), new_api_key()
    auth = AuthSettings(
        api_keys=(
            (hash_api_key(reader), frozenset({scopes.READ, scopes.WRITE})),
            (hash_api_key(importer), frozenset({scopes.IMPORT})),
        )
    )
    stored = report()
    import_reports.reports[stored.import_id] = stored
    app = create_app(
        Settings(auth=auth, rate_limits=RateLimitSettings(enabled=False)),
        import_reports=import_reports,
        import_outcomes=import_outcomes,
    )
    url = f"/v1/imports/{stored.import_id}"
    try:
        client = app.test_client()
        assert client.get(url).status_code == 401
        forbidden = client.get(url, headers={"Authorization": f"Bearer {reader}"})
        assert forbidden.status_code == 403
        assert 'scope="contacts:import"' in forbidden.headers["WWW-Authenticate"]
        allowed = client.get(url, headers={"Authorization": f"Bearer {importer}"})
        assert allowed.status_code == 200
    finally:
        app.extensions["query_api"].ports.close()


def test_the_openapi_document_describes_the_route(client):
    document = client.get("/openapi.json").get_json()

    operation = document["paths"]["/v1/imports/{import_id}"]["get"]
    assert {"200", "404", "503"} <= set(operation["responses"])
    schema = document["components"]["schemas"]["ImportStatus"]
    assert {"status", "applied", "rejected", "pending", "rejected_reasons", "errors"} <= set(
        schema["properties"]
    )
    assert {"repaired", "warnings", "warnings_truncated"} <= set(schema["properties"])
    assert schema["properties"]["warnings"]["items"]["$ref"].endswith("/ImportProblem")
    # A client reading only `status` must learn that it does not cover a failed import.
    assert "`failed`" in schema["properties"]["status"]["description"]
    assert "`status`" in schema["properties"]["state"]["description"]
    assert "`state`" in operation["description"]
