"""The log redactor: registered secrets in every encoding, credential-shaped
values whatever they are, in messages and in logged tracebacks, text and JSON."""

from __future__ import annotations

import base64
import io
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from icoapi.core.logging import JsonFormatter, SecretRedactor, redact_credentials

SECRET = "pa55 w+rd/with=odd&chars"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        # Encoded twice (a query string inside a query string) or three times.
        quote(quote(SECRET, safe=""), safe=""),
        quote(quote(quote(SECRET))),
        quote_plus(quote_plus(SECRET)).lower(),
        # Partly encoded: some characters only, hex digits in mixed case.
        "pa55%20w+rd%2Fwith=odd%26chars",
        "pa55+w%2brd/with%3Dodd&chars",
        "pa55 w+rd%252fwith=odd%26chars",
    ],
)
@pytest.mark.parametrize("formatter", [logging.Formatter("%(message)s"), JsonFormatter()])
def test_registered_secret_in_any_encoding(form: str, formatter: logging.Formatter) -> None:
    redactor = SecretRedactor()
    redactor.register([SECRET])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(redactor)
    logger = logging.getLogger(f"redaction-test-{id(formatter)}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("connecting with %s", form)
        try:
            raise ValueError(f"bad password {form}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "connecting with ***" in written
    assert "ValueError" in written  # the traceback is there, cleaned
    assert form not in written


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"GET /x?api_key=abc%2Bd&y=1 HTTP/1.1"', '"GET /x?api_key=***&y=1 HTTP/1.1"'),
        ("next=%2Fx%3Fapi_key%3Dabc%26y%3D1", "next=%2Fx%3Fapi_key%3D***%26y%3D1"),
        ("n=%252Fx%253Ftoken%253Dabc%2526y%253D1", "n=%252Fx%253Ftoken%253D***%2526y%253D1"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ('{"X-API-Key": "abc"}', '{"X-API-Key": "***"}'),
        ("icoapi, icoapi.bearer.abc-def", "icoapi, icoapi.bearer.***"),
        ("token icoapi_0123456789abcdefXYZ_-", "token icoapi_***"),
        ("authorization failed for a user", "authorization failed for a user"),
    ],
)
def test_credential_shaped_values(line: str, expected: str) -> None:
    assert redact_credentials(line) == expected
