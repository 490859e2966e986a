"""What flow.py works with: the environment it is given, the fake gateway's
inbox, the two clients, and the shapes of Twilio's answers and errors."""

import json
import os
import re
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client


class Failed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failed(what)


class Env:
    def __init__(self):
        get = self.get
        self.base_url = get("SDK_FLOW_BASE_URL")
        self.inbox_url = get("SDK_FLOW_INBOX_URL")
        self.phone_prefix = get("SDK_FLOW_PHONE_PREFIX")
        self.max_attempts = int(get("SDK_FLOW_MAX_ATTEMPTS"))
        self.max_sends = int(get("SDK_FLOW_MAX_SENDS"))
        # Client A: sms_as_whatsapp on, no resend cooldown. Client B: defaults.
        self.a = [get(f"SDK_FLOW_A_{n}") for n in ("ACCOUNT_SID", "SERVICE_SID", "KEY")]
        self.b = [get(f"SDK_FLOW_B_{n}") for n in ("ACCOUNT_SID", "SERVICE_SID", "KEY")]

    @staticmethod
    def get(name):
        value = os.environ.get(name)
        if not value:
            raise Failed(f"the environment variable {name} is not set")
        return value


class Inbox:
    """What the fake gateway delivered (`GET /fake/messages`)."""

    def __init__(self, url):
        self.url = url

    def messages_to(self, phone):
        with urllib.request.urlopen(self.url, timeout=10) as answer:
            messages = json.load(answer)
        return [m["message"] for m in messages if m["number"] == phone.lstrip("+")]

    def seen(self, phone):
        return len(self.messages_to(phone))

    def next_message(self, phone, seen, timeout=15):
        """The first message to `phone` after the `seen` it had."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages_to(phone)
            if len(messages) > seen:
                return messages[seen]
            time.sleep(0.05)
        raise Failed(f"no message reached {phone} within {timeout} s (it had {seen})")

    def next_code(self, phone, seen):
        message = self.next_message(phone, seen)
        parts = message.split("*")
        check(len(parts) >= 3 and parts[1].isdigit(), f"no *code* in the message {message!r}")
        return parts[1]


def wrong(code):
    """A code of the same length that is not `code`."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def refused(what, call, status, code, mentions=None):
    try:
        call()
    except TwilioRestException as e:
        check(
            type(e) is TwilioRestException,
            f"{what}: a {type(e).__name__}, not a plain TwilioRestException",
        )
        check(
            (e.status, e.code) == (status, code),
            f"{what}: expected {status} / {code}, got {e.status} / {e.code}: {e.msg}",
        )
        if mentions:
            check(mentions in e.msg, f"{what}: the message does not name {mentions!r}: {e.msg}")
        return
    except TwilioException as e:
        raise Failed(f"{what}: expected a TwilioRestException, got {type(e).__name__}: {e}")
    raise Failed(f"{what}: expected {status} / {code}, but the call succeeded")


def dates(resource, recent=True):
    """The resource's dates parsed (the SDK leaves a string it cannot parse),
    and, for one made just now, are now: in UTC."""
    now = datetime.now(timezone.utc)
    for name in ("date_created", "date_updated"):
        value = getattr(resource, name)
        check(isinstance(value, datetime), f"{name} did not parse as a date: {value!r}")
        if recent:
            check(abs(now - value) < timedelta(minutes=5), f"{name} is not now: {value} ({now})")


def is_time(text):
    """Whether `text` is a time in Twilio's form, `2026-12-04T20:00:00Z`."""
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
        return True
    except (TypeError, ValueError):
        return False


class FlowBase:
    """The two clients, A and B, through the SDK, and the checks every step makes."""

    def __init__(self, env):
        self.env = env
        self.inbox = Inbox(env.inbox_url)
        self.account_a, self.service_sid_a, key_a = env.a
        self.account_b, self.service_sid_b, key_b = env.b
        self.key_a, self.key_b = key_a, key_b
        self.a = self.service(self.account_a, key_a, self.service_sid_a)
        self.b = self.service(self.account_b, key_b, self.service_sid_b)
        self.phones = 0

    def client(self, account_sid, key):
        # The two lines an app changes: its credentials, and the base URL.
        client = Client(account_sid, key)
        client.verify.base_url = self.env.base_url
        return client

    def service(self, account_sid, key, service_sid):
        return self.client(account_sid, key).verify.v2.services(service_sid)

    def phone(self):
        self.phones += 1
        return f"{self.env.phone_prefix}{self.phones:02d}"

    def created(self, phone, service=None, channel="whatsapp", **more):
        """Starts a verification and returns it with the code delivered."""
        service = service or self.a
        seen = self.inbox.seen(phone)
        v = service.verifications.create(to=phone, channel=channel, **more)
        self.resource(v, phone, channel, "pending")
        return v, self.inbox.next_code(phone, seen)

    def resource(self, v, phone, channel, status):
        check(re.fullmatch("VE[0-9a-f]{32}", v.sid or ""), f"a verification SID: {v.sid!r}")
        check(v.to == phone, f"to: {v.to!r}, expected {phone}")
        check(v.channel == channel, f"channel: {v.channel!r}, expected {channel}")
        check(v.status == status, f"status of {v.sid}: {v.status!r}, expected {status}")
        dates(v)
        check(
            v.url == f"{self.env.base_url}/v2/Services/{v.service_sid}/Verifications/{v.sid}",
            f"url: {v.url!r}",
        )
        attempts = v.send_code_attempts
        check(isinstance(attempts, list) and attempts, f"send_code_attempts: {attempts!r}")
        for attempt in attempts:
            check(
                isinstance(attempt.get("attempt_sid"), str) and attempt.get("channel"),
                f"a send code attempt: {attempt!r}",
            )
            check(is_time(attempt.get("time")), f"a send code attempt's time: {attempt!r}")

    def checked(self, status, valid, what, service=None, **by):
        check_ = (service or self.a).verification_checks.create(**by)
        check(
            check_.status == status and check_.valid is valid,
            f"{what}: status {check_.status!r} valid {check_.valid!r}, expected {status} {valid}",
        )
        dates(check_)
        return check_
