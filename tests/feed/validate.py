"""Checks the public feed's documents with standard tools, written from their
specifications and not from our code:

- the OpenAPI document is valid OpenAPI 3.1 (openapi-spec-validator), and
  every API answer validates against the schema it documents (jsonschema);
- the Atom feed parses with feedparser, without errors;
- the IATI export validates against the official IATI 2.03 XSD (xmlschema).

usage: python3 validate.py <base-url> <iati-xsd-dir> <commune> <donor> <receipt> <bank-reference>

Prints one JSON report on stdout; the Rust test (tests/tests/it/feed.rs)
asserts on it.
"""

import json
import xml.etree.ElementTree as ET
import os
import sys
import urllib.error
import urllib.request

import feedparser
import jsonschema
import xmlschema
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def fetch(url, body=None):
    """GET, or POST `body` as JSON when given."""
    request = urllib.request.Request(url)
    if body is not None:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def main():
    base, xsd_dir, commune, donor, receipt, reference = sys.argv[1:7]
    report = {}

    status, _, body = fetch(base + "/api/v1/openapi.json")
    document = json.loads(body)
    try:
        validate_openapi(document)
        report["openapi_valid"] = True
    except Exception as error:  # the validator raises several kinds
        report["openapi_valid"] = False
        report["openapi_error"] = str(error)[:2000]

    # Every documented operation, called with real ids, and its answer
    # checked against the documented schema for that status.
    registry = Registry().with_resource(
        "urn:openapi", Resource(contents=document, specification=DRAFT202012)
    )
    # A finding of the demo's overlaps, for the list of its events.
    _, _, body = fetch(base + "/api/v1/overlaps")
    finding = json.loads(body)["findings"][0]["finding"]
    values = {"code": commune, "org_id": donor, "receipt_id": receipt, "finding": finding}
    # The one POST (SPEC 9.3): the reference in the body, never the URL.
    bodies = {"/receipts/lookup": {"reference": reference}}
    answers = {}
    for path, item in document["paths"].items():
        url = path
        for name, value in values.items():
            url = url.replace("{" + name + "}", urllib.request.quote(value, safe=""))
        url = base + "/api/v1" + url
        method = "post" if "post" in item else "get"
        status, headers, body = fetch(url, bodies[path] if method == "post" else None)
        responses = item[method]["responses"]
        outcome = {"status": status}
        if str(status) not in responses:
            outcome["error"] = "undocumented status"
        else:
            schema_ref = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
            schema = {"$ref": "urn:openapi" + schema_ref}
            try:
                validator = jsonschema.Draft202012Validator(schema, registry=registry)
                errors = sorted(validator.iter_errors(json.loads(body)), key=str)
                if errors:
                    outcome["error"] = "; ".join(e.message for e in errors[:5])[:2000]
                else:
                    outcome["valid"] = True
            except Exception as error:
                outcome["error"] = repr(error)[:2000]
        answers[path] = outcome
    # The lists paged by seq: a page after a cursor validates too.
    for path in ("/transfers", "/deliveries"):
        _, _, body = fetch(base + "/api/v1" + path)
        first = json.loads(body)["items"][0]["seq"]
        url = path + "?after=" + str(first)
        status, _, body = fetch(base + "/api/v1" + url)
        schema_ref = document["paths"][path]["get"]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]["$ref"]
        validator = jsonschema.Draft202012Validator(
            {"$ref": "urn:openapi" + schema_ref}, registry=registry
        )
        errors = sorted(validator.iter_errors(json.loads(body)), key=str)
        answers[url] = {"status": status}
        if errors:
            answers[url]["error"] = "; ".join(e.message for e in errors[:5])[:2000]
        else:
            answers[url]["valid"] = True
    # A documented error answer validates too.
    status, _, body = fetch(base + "/api/v1/communes/does-not-exist")
    answers["/communes/{code} (unknown)"] = {
        "status": status,
        "valid": status == 404 and set(json.loads(body)) == {"error"},
    }
    report["api"] = answers

    status, headers, body = fetch(base + "/feed.atom")
    feed = feedparser.parse(body)
    report["atom"] = {
        "status": status,
        "content_type": headers.get("Content-Type"),
        "bozo": bool(feed.bozo),
        "bozo_exception": str(feed.get("bozo_exception", "")),
        "version": feed.version,
        "title": feed.feed.get("title"),
        "entries": len(feed.entries),
        "entries_with_links": sum(1 for e in feed.entries if e.get("link")),
        "ids_unique": len({e.id for e in feed.entries}) == len(feed.entries),
    }

    status, _, body = fetch(base + "/exports/iati-activities.xml")
    schema = xmlschema.XMLSchema(os.path.join(xsd_dir, "iati-activities-schema.xsd"))
    errors = [str(e)[:500] for e in schema.iter_errors(body.decode("utf-8"))]


    root = ET.fromstring(body)
    types = {}
    for code in root.iter("transaction-type"):
        types[code.get("code")] = types.get(code.get("code"), 0) + 1
    report["iati"] = {
        "status": status,
        "valid": not errors,
        "errors": errors[:5],
        "version": root.get("version"),
        "transaction_types": types,
        "sectors": sorted(s.get("code") for s in root.iter("sector")),
        "sector_percentages": sum(float(s.get("percentage")) for s in root.iter("sector")),
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
