"""An app that uses Twilio Verify through the official twilio-python SDK,
pointed at this service by its credentials and base URL only, goes through
the whole flow. tests/api/twilio_sdk.rs runs it against a running service
and its fake WhatsApp gateway; everything it needs comes from the
environment (see `Env` in flow_support.py). It stops at the first step
that fails, saying what it expected, and exits 1.
"""

import asyncio
import sys
import traceback

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from flow_support import Env, Failed, FlowBase, check, dates, refused, wrong


class Flow(FlowBase):
    """The steps, in order."""

    def service_resource(self):
        s = self.a.fetch()
        check(s.sid == self.service_sid_a, f"the service's sid: {s.sid!r}")
        check(s.account_sid == self.account_a, f"the service's account_sid: {s.account_sid!r}")
        check(
            isinstance(s.friendly_name, str) and s.friendly_name,
            f"friendly_name: {s.friendly_name!r}",
        )
        check(isinstance(s.code_length, int) and s.code_length >= 4, f"code_length: {s.code_length!r}")
        dates(s, recent=False)

    def create_and_check_by_to(self):
        phone = self.phone()
        # Fields this service does not use are ignored, as an app may send them.
        v, code = self.created(phone, custom_friendly_name="Tienda Sol", app_hash="He42w354ol9")
        check(v.service_sid == self.service_sid_a, f"service_sid: {v.service_sid!r}")
        check(v.account_sid == self.account_a, f"account_sid: {v.account_sid!r}")
        check(len(v.send_code_attempts) == 1, f"one send: {v.send_code_attempts!r}")
        check(len(code) == self.a.fetch().code_length, f"the code's length: {code!r}")
        c = self.checked("pending", False, "a wrong code", to=phone, code=wrong(code))
        check((c.sid, c.to) == (v.sid, phone), f"the check's sid and to: {c.sid} {c.to}")
        self.other_client_sees_nothing(v, code)
        c = self.checked("approved", True, "the right code, by To", to=phone, code=code)
        check(c.sid == v.sid and c.channel == "whatsapp", f"the check: {c.sid} {c.channel}")
        refused(
            "the right code again, by To",
            lambda: self.a.verification_checks.create(to=phone, code=code),
            404,
            20404,
        )
        refused(
            "the right code again, by VerificationSid",
            lambda: self.a.verification_checks.create(verification_sid=v.sid, code=code),
            404,
            20404,
        )
        fetched = self.a.verifications(v.sid).fetch()
        self.resource(fetched, phone, "whatsapp", "approved")

    def other_client_sees_nothing(self, v, code):
        """Client B, with its own good credentials, meets A's SIDs as missing."""
        b = self.b
        other_service = self.client(self.account_b, self.key_b).verify.v2.services(self.service_sid_a)
        for what, call in [
            ("B fetches A's service", lambda: other_service.fetch()),
            (
                "B creates in A's service",
                lambda: other_service.verifications.create(to=v.to, channel="whatsapp"),
            ),
            ("B fetches A's verification", lambda: b.verifications(v.sid).fetch()),
            (
                "B fetches A's verification in A's service",
                lambda: other_service.verifications(v.sid).fetch(),
            ),
            (
                "B checks A's verification",
                lambda: b.verification_checks.create(verification_sid=v.sid, code=code),
            ),
            (
                "B cancels A's verification",
                lambda: b.verifications(v.sid).update(status="canceled"),
            ),
        ]:
            refused(what, call, 404, 20404)
        refused(
            "B checks A's number",
            lambda: b.verification_checks.create(to=v.to, code=code),
            404,
            20404,
        )
        still = self.a.verifications(v.sid).fetch()
        check(still.status == "pending", f"A's verification after B's tries: {still.status!r}")

    def check_by_verification_sid(self):
        phone = self.phone()
        v, code = self.created(phone)
        c = self.checked(
            "approved",
            True,
            "the right code, by VerificationSid",
            verification_sid=v.sid,
            code=code,
        )
        check((c.sid, c.to) == (v.sid, phone), f"the check's sid and to: {c.sid} {c.to}")
        self.resource(self.a.verifications(v.sid).fetch(), phone, "whatsapp", "approved")

    def cancel_and_approve_through_update(self):
        phone = self.phone()
        v, code = self.created(phone)
        canceled = self.a.verifications(v.sid).update(status="canceled")
        self.resource(canceled, phone, "whatsapp", "canceled")
        self.resource(self.a.verifications(v.sid).fetch(), phone, "whatsapp", "canceled")
        refused(
            "the code of a canceled one",
            lambda: self.a.verification_checks.create(to=phone, code=code),
            404,
            20404,
        )
        refused(
            "canceling it again",
            lambda: self.a.verifications(v.sid).update(status="canceled"),
            404,
            20404,
        )

        phone = self.phone()
        v, code = self.created(phone)
        refused(
            "an update to pending",
            lambda: self.a.verifications(v.sid).update(status="pending"),
            400,
            60200,
            mentions="Status",
        )
        approved = self.a.verifications(v.sid).update(status="approved")
        self.resource(approved, phone, "whatsapp", "approved")
        refused(
            "the code of an approved one",
            lambda: self.a.verification_checks.create(to=phone, code=code),
            404,
            20404,
        )

    def attempts_limit(self):
        phone = self.phone()
        v, code = self.created(phone)
        # A blank code (an empty input box) is a bad parameter, not an attempt.
        refused(
            "a blank code",
            lambda: self.a.verification_checks.create(to=phone, code=""),
            400,
            60200,
            mentions="Code",
        )
        # Each allowed wrong code counts; the one that uses the last says so, the next check is 60202.
        for n in range(1, self.env.max_attempts + 1):
            status = "pending" if n < self.env.max_attempts else "max_attempts_reached"
            self.checked(
                status, False, f"wrong code {n} of {self.env.max_attempts}", to=phone, code=wrong(code)
            )
        refused(
            "the right code after the attempts",
            lambda: self.a.verification_checks.create(to=phone, code=code),
            429,
            60202,
        )
        refused(
            "by VerificationSid after the attempts",
            lambda: self.a.verification_checks.create(verification_sid=v.sid, code=code),
            429,
            60202,
        )
        self.resource(self.a.verifications(v.sid).fetch(), phone, "whatsapp", "max_attempts_reached")
        # Unlike Twilio, a new verification can start at once.
        fresh, code = self.created(phone)
        check(fresh.sid != v.sid, f"a create after the attempts starts a new verification: {fresh.sid}")
        self.checked("approved", True, "the new verification's code", to=phone, code=code)

    def repeated_create(self):
        phone = self.phone()
        v, first = self.created(phone)
        seen = self.inbox.seen(phone)
        again = self.a.verifications.create(to=phone, channel="whatsapp")
        check(
            again.sid == v.sid,
            f"a repeated create answers the same verification: {again.sid} != {v.sid}",
        )
        self.resource(again, phone, "whatsapp", "pending")
        check(len(again.send_code_attempts) == 2, f"two sends: {again.send_code_attempts!r}")
        second = self.inbox.next_code(phone, seen)
        check(second == first, "a resend sends the same code, as Twilio's does")
        # The first message, arriving late, still works.
        self.checked("approved", True, "the first code after a resend", to=phone, code=first)

        phone = self.phone()
        self.created(phone)
        for _ in range(self.env.max_sends - 1):
            self.a.verifications.create(to=phone, channel="whatsapp")
        refused(
            "a send past max_sends",
            lambda: self.a.verifications.create(to=phone, channel="whatsapp"),
            429,
            60203,
        )

        phone = self.phone()
        self.created(phone, service=self.b)
        refused(
            "a resend too soon",
            lambda: self.b.verifications.create(to=phone, channel="whatsapp"),
            429,
            20429,
        )

    def async_client(self):
        """The same calls through the SDK's asyncio client (aiohttp underneath)."""

        async def flow():
            http = AsyncTwilioHttpClient()
            try:
                client = Client(self.account_a, self.key_a, http_client=http)
                client.verify.base_url = self.env.base_url
                service = client.verify.v2.services(self.service_sid_a)
                phone = self.phone()
                seen = self.inbox.seen(phone)
                v = await service.verifications.create_async(to=phone, channel="whatsapp")
                self.resource(v, phone, "whatsapp", "pending")
                code = self.inbox.next_code(phone, seen)
                c = await service.verification_checks.create_async(verification_sid=v.sid, code=code)
                check((c.status, c.valid) == ("approved", True), f"an async check: {c.status} {c.valid}")
                self.resource(await service.verifications(v.sid).fetch_async(), phone, "whatsapp", "approved")
                try:
                    await service.verification_checks.create_async(to=phone, code=code)
                except TwilioRestException as e:
                    check((e.status, e.code) == (404, 20404), f"an async check again: {e.status} {e.code}")
                else:
                    raise Failed("an async check again: expected 404 / 20404, but it succeeded")
            finally:
                await http.close()

        asyncio.run(flow())

    def sms_and_locale(self):
        phone = self.phone()
        v, code = self.created(phone, channel="sms")
        self.checked("approved", True, "an sms verification's code", to=phone, code=code)
        refused(
            "sms without sms_as_whatsapp",
            lambda: self.b.verifications.create(to=self.phone(), channel="sms"),
            400,
            60200,
            mentions="sms_as_whatsapp",
        )
        phone = self.phone()
        seen = self.inbox.seen(phone)
        self.a.verifications.create(to=phone, channel="whatsapp", locale="en-US")
        message = self.inbox.next_message(phone, seen)
        check(message.startswith("Your verification code"), f"Locale en-US: {message!r}")

    def bad_input(self):
        a = self.a
        refused(
            "To not a phone",
            lambda: a.verifications.create(to="12", channel="whatsapp"),
            400,
            60200,
            mentions="To",
        )
        for channel in ("call", "email", "sna", "auto"):
            refused(
                f"Channel {channel}",
                lambda: a.verifications.create(to=self.phone(), channel=channel),
                400,
                60200,
                mentions="Channel",
            )
        refused(
            "a check of no verification",
            lambda: a.verification_checks.create(code="123456"),
            400,
            60200,
        )
        refused(
            "a check of a number with none",
            lambda: a.verification_checks.create(to=self.phone(), code="123456"),
            404,
            20404,
        )
        unknown = "VE" + "0" * 32
        refused("an unknown verification", lambda: a.verifications(unknown).fetch(), 404, 20404)
        unknown_service = self.client(self.account_a, self.key_a).verify.v2.services("VA" + "0" * 32)
        refused("an unknown service", lambda: unknown_service.fetch(), 404, 20404)

    def wrong_credentials(self):
        for what, account, key in [
            ("a wrong key", self.account_a, "otpk_not-a-key"),
            ("B's key with A's Account SID", self.account_a, self.key_b),
            ("A's key with B's Account SID", self.account_b, self.key_a),
            ("an unknown Account SID", "AC" + "0" * 32, self.key_a),
        ]:
            service = self.service(account, key, self.service_sid_a)
            refused(what, lambda: service.fetch(), 401, 20003)
            refused(
                f"{what}, creating",
                lambda: service.verifications.create(to=self.phone(), channel="whatsapp"),
                401,
                20003,
            )


def main():
    step = Env
    try:
        flow = Flow(Env())
        for step in [
            flow.service_resource,
            flow.create_and_check_by_to,
            flow.check_by_verification_sid,
            flow.cancel_and_approve_through_update,
            flow.attempts_limit,
            flow.repeated_create,
            flow.async_client,
            flow.sms_and_locale,
            flow.bad_input,
            flow.wrong_credentials,
        ]:
            step()
            print(f"ok {step.__name__}", flush=True)
    except Failed as e:
        print(f"FAILED in {step.__name__}: {e}", file=sys.stderr)
        return 1
    except Exception:
        print(f"FAILED in {step.__name__}:", file=sys.stderr)
        traceback.print_exc()
        return 1
    print("twilio-python: the whole flow passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
