"""A caller's view: a Python client generated from the committed
openapi/openapi.json (openapi-python-client) requests a code, reads it from
the dev inbox, and verifies it, using only the generated code for the API.
Every answer must parse into the schema the document gives for its status,
with no field the schema does not name.

Usage: generated_client.py BASE_URL API_KEY ADMIN_KEY (against `serve --dev`).
"""

import datetime
import json
import sys
import time
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
    DeliveryStatus,
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
# Sent at once: nothing waits, so no estimate.
assert verification.delivery_status == DeliveryStatus.SENT, verification.delivery_status
assert verification.estimated_send_at is None, verification.estimated_send_at

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



def dev_gateway(method, body=None):
    data = None if body is None else json.dumps(body).encode()
    change = urllib.request.Request(
        f"{base}/dev/gateway", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(change) as answer:
        assert answer.status == 200, answer.status


# While the gateway is down the message waits: the answer says when it should
# go out (a date-time the generated model reads), always before the code expires.
dev_gateway("PUT", {"down": True})
try:
    waiting = parsed(
        request_code.sync_detailed(client=client, body=CodeRequest(phone=PHONE, purpose="waits")),
        Verification,
        202,
    )
finally:
    dev_gateway("DELETE")
assert waiting.delivery_status == DeliveryStatus.QUEUED, waiting.delivery_status
assert isinstance(waiting.estimated_send_at, datetime.datetime), waiting.estimated_send_at
assert waiting.estimated_send_at < waiting.expires_at, (waiting.estimated_send_at, waiting.expires_at)
deadline = time.monotonic() + 60
while True:
    read = parsed(get_verification.sync_detailed(client=client, id=waiting.id), Verification, 200)
    if read.delivery_status == DeliveryStatus.SENT:
        break
    assert isinstance(read.estimated_send_at, datetime.datetime), read.estimated_send_at
    assert time.monotonic() < deadline, "the waiting code never went out"
    time.sleep(0.2)
assert read.estimated_send_at is None, read.estimated_send_at

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

print("the generated client requested, read and verified a code, and read when a waiting one goes; every answer parsed")
