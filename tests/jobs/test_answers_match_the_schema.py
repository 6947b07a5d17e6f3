"""The jobs API answers what its OpenAPI document promises: the web app's types are generated from that
document (web/src/api-schema.ts), so a field the document calls required and the API leaves out would
be undefined in the browser. Runs in-process on the local backend."""
from __future__ import annotations

import pytest
from jobs_support import dataset, wait_ended
from jsonschema import Draft202012Validator
from test_bad_input import GOOD, make_client


@pytest.fixture
def api(tmp_path):
    client = make_client(tmp_path)
    dataset(tmp_path, "scan.nxs", seconds=0.1)
    document = client.get("/api/openapi.json").get_json()
    return client, document


def check(document: dict, schema_name: str, value) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda error: list(error.path))
    assert not errors, [f"{list(error.path)}: {error.message}" for error in errors]


def test_jobs_lists_and_availability_have_every_field_the_document_requires(api):
    client, document = api
    queued = client.post("/api/jobs", json=GOOD)
    assert queued.status_code == 201
    check(document, "Job", queued.get_json())
    check(document, "Job", wait_ended(client, queued.get_json()["id"]))  # an ended job carries its end
    batch = client.post("/api/jobs/batch", json={"jobs": [GOOD, dict(GOOD, mode="preview")]})
    assert batch.status_code == 201
    for job in batch.get_json()["jobs"]:
        check(document, "Job", job)
    listing = client.get("/api/jobs").get_json()
    assert listing["total"] == 3
    for job in listing["jobs"]:
        check(document, "Job", job)
    check(document, "ClusterNote", listing["cluster"])
    for mode in client.get("/api/cluster").get_json()["modes"]:
        check(document, "ModeAvailability", mode)
