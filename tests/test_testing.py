"""phonehome.testing: the capture receivers decode what real clients send."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

from phonehome.testing import AzureIngestion, OTLPReceiver


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def test_the_receiver_decodes_otlp_json_with_hex_ids(otlp_receiver: OTLPReceiver) -> None:
    payload = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json-span",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "1000000001",
                                "attributes": [{"key": "n", "value": {"intValue": "3"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    status = post(
        otlp_receiver.url + "/v1/traces",
        gzip.compress(json.dumps(payload).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200
    (span,) = otlp_receiver.spans
    assert (span.name, span.trace_id, span.span_id) == (
        "json-span",
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
    )
    assert span.attributes == {"n": 3} and span.resource == {"service.name": "svc"}
    assert span.duration == 1.0


def test_the_receiver_answers_with_the_status_it_is_given(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.status = 503
    try:
        post(otlp_receiver.url + "/v1/logs", b"", {"Content-Type": "application/x-protobuf"})
    except urllib.error.HTTPError as error:
        assert error.code == 503
    else:
        raise AssertionError("expected HTTP 503")
    assert otlp_receiver.logs == [] and len(otlp_receiver.requests) == 1


def test_the_azure_stub_accepts_envelopes(azure_ingestion: AzureIngestion) -> None:
    envelopes = [
        {
            "iKey": azure_ingestion.instrumentation_key,
            "data": {"baseType": "EventData", "baseData": {"name": "e"}},
        }
    ]
    assert (
        post(
            azure_ingestion.url + "/v2.1/track",
            json.dumps(envelopes).encode(),
            {"Content-Type": "application/json"},
        )
        == 200
    )
    assert azure_ingestion.of_type("EventData") == [{"name": "e"}]
    assert azure_ingestion.connection_string.startswith("InstrumentationKey=")
