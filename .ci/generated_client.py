"""A caller's view: a Python client generated from the committed
openapi/openapi.json (openapi-python-client) requests a code, reads it from
the dev inbox, and verifies it, using only the generated code for the API.
Every answer must parse into the schema the document gives for its status,
with no field the schema does not name.

Usage: generated_client.py BASE_URL API_KEY ADMIN_KEY (against `serve --dev`).
"""

import json
import sys
import urllib.request

from otp_service_client import AuthenticatedClient, Client
from otp_service_client.api.admin import list_senders, qr_image
from otp_service_client.api.operations import healthz, readyz
from otp_service_client.api.otp import (
    cancel_verification,
    get_verification,
    request_code,
    verify_code,
)
from otp_service_client.models import (
    CodeCheck,
    CodeRequest,
    Health,
    Problem,
    Readiness,
    SendersReport,
    Verification,
    VerificationStatus,
)
from otp_service_client.types import File

base, api_key, admin_key = sys.argv[1:4]
PHONE = "+59169657077"


def key_client(header, key):
    # The document's keys are headers with the bare key, not "Authorization: Bearer".
    return AuthenticatedClient(
        base_url=base,
        token=key,
        auth_header_name=header,
        prefix="",
        raise_on_unexpected_status=True,
    )


def parsed(response, kind, status):
    assert response.status_code == status, (status, response.status_code, response.content)
    assert isinstance(response.parsed, kind), (kind, response.parsed, response.content)
    extra = getattr(response.parsed, "additional_properties", {})
    assert not extra, f"fields the document does not name: {extra}"
    return response.parsed


client = key_client("X-Api-Key", api_key)

requested = request_code.sync_detailed(
    client=client, body=CodeRequest(phone=PHONE, purpose="generated-client")
)
verification = parsed(requested, Verification, 202)

# The code, from the fake gateway's inbox (a dev route, outside the API).
with urllib.request.urlopen(f"{base}/dev/messages") as answer:
    inbox = json.load(answer)
text = [m for m in inbox if m["number"] == PHONE.lstrip("+")][-1]["message"]
code = text.split("*")[1]

wrong_code = "1" * len(code) if code == "0" * len(code) else "0" * len(code)
wrong = verify_code.sync_detailed(client=client, body=CodeCheck(id=verification.id, code=wrong_code))
assert parsed(wrong, Problem, 422).code == "invalid_code"

right = verify_code.sync_detailed(client=client, body=CodeCheck(id=verification.id, code=code))
assert parsed(right, Verification, 200).status == VerificationStatus.APPROVED
read = get_verification.sync_detailed(client=client, id=verification.id)
assert parsed(read, Verification, 200).verified_at is not None

other = parsed(
    request_code.sync_detailed(client=client, body=CodeRequest(phone=PHONE, purpose="to-cancel")),
    Verification,
    202,
)
canceled = cancel_verification.sync_detailed(client=client, id=other.id)
assert parsed(canceled, Verification, 200).status == VerificationStatus.CANCELED
again = cancel_verification.sync_detailed(client=client, id=other.id)
assert parsed(again, Problem, 409).code == "not_pending"

wrong_key = key_client("X-Api-Key", "otpk_not-a-key")
refused = request_code.sync_detailed(client=wrong_key, body=CodeRequest(phone=PHONE))
assert parsed(refused, Problem, 401).code == "unauthorized"

anyone = Client(base_url=base, raise_on_unexpected_status=True)
assert parsed(healthz.sync_detailed(client=anyone), Health, 200).status == "ok"
assert parsed(readyz.sync_detailed(client=anyone), Readiness, 200).status == "ready"

admin = key_client("X-Admin-Key", admin_key)
report = parsed(list_senders.sync_detailed(client=admin), SendersReport, 200)
assert report.senders[0].name == "sender-1"
image = parsed(qr_image.sync_detailed(client=admin, name="sender-1"), File, 200)
assert image.payload.read(8) == b"\x89PNG\r\n\x1a\n"

print("the generated client requested, read and verified a code; every answer parsed")
