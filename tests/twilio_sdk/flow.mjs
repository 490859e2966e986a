// An app that uses Twilio Verify through the official twilio-node SDK, pointed
// at this service by its credentials and base URL only, goes through the whole
// flow: the same steps as flow.py. tests/api/twilio_sdk.rs runs it against a
// running service and its fake WhatsApp gateway; everything it needs comes from
// the environment (SDK_FLOW_NODE_DIR: where `npm ci` installed the SDK). It
// stops at the first step that fails, saying what it expected, and exits 1.

import { createRequire } from "node:module";
import { join } from "node:path";

class Failed extends Error {}

function check(condition, what) {
  if (!condition) throw new Failed(what);
}

function env(name) {
  const value = process.env[name];
  if (!value) throw new Failed(`the environment variable ${name} is not set`);
  return value;
}

const require = createRequire(join(env("SDK_FLOW_NODE_DIR"), "package.json"));
const twilio = require("twilio");

const config = {
  baseUrl: env("SDK_FLOW_BASE_URL"),
  inboxUrl: env("SDK_FLOW_INBOX_URL"),
  phonePrefix: env("SDK_FLOW_PHONE_PREFIX"),
  maxAttempts: Number(env("SDK_FLOW_MAX_ATTEMPTS")),
  maxSends: Number(env("SDK_FLOW_MAX_SENDS")),
  // Client A: sms_as_whatsapp on, no resend cooldown. Client B: defaults.
  a: ["ACCOUNT_SID", "SERVICE_SID", "KEY"].map((n) => env(`SDK_FLOW_A_${n}`)),
  b: ["ACCOUNT_SID", "SERVICE_SID", "KEY"].map((n) => env(`SDK_FLOW_B_${n}`)),
};
const [accountA, serviceSidA, keyA] = config.a;
const [accountB, serviceSidB, keyB] = config.b;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// What the fake gateway delivered (`GET /fake/messages`).
async function messagesTo(phone) {
  const answer = await fetch(config.inboxUrl);
  check(answer.ok, `the inbox answered ${answer.status}`);
  const messages = await answer.json();
  return messages.filter((m) => m.number === phone.replace("+", "")).map((m) => m.message);
}

const seen = async (phone) => (await messagesTo(phone)).length;

async function nextMessage(phone, had, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const messages = await messagesTo(phone);
    if (messages.length > had) return messages[had];
    await sleep(50);
  }
  throw new Failed(`no message reached ${phone} within ${timeoutMs} ms (it had ${had})`);
}

async function nextCode(phone, had) {
  const message = await nextMessage(phone, had);
  const parts = message.split("*");
  check(parts.length >= 3 && /^\d+$/.test(parts[1]), `no *code* in the message ${message}`);
  return parts[1];
}

// A code of the same length that is not `code`.
const wrong = (code) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, "0");

function client(accountSid, key) {
  // The two lines an app changes: its credentials, and the base URL.
  const c = twilio(accountSid, key);
  c.verify.baseUrl = config.baseUrl;
  return c;
}

const service = (accountSid, key, sid) => client(accountSid, key).verify.v2.services(sid);
const A = service(accountA, keyA, serviceSidA);
const B = service(accountB, keyB, serviceSidB);

let phones = 0;
const phone = () => `${config.phonePrefix}${String(++phones).padStart(2, "0")}`;

async function refused(what, call, status, code, mentions) {
  try {
    await call();
  } catch (e) {
    check(e instanceof twilio.RestException, `${what}: expected a RestException, got ${e?.constructor?.name}: ${e}`);
    check(e.constructor === twilio.RestException, `${what}: a ${e.constructor.name}, not a plain RestException`);
    check(
      e.status === status && e.code === code,
      `${what}: expected ${status} / ${code}, got ${e.status} / ${e.code}: ${e.message}`,
    );
    check(e.moreInfo === `https://www.twilio.com/docs/errors/${code}`, `${what}: moreInfo ${e.moreInfo}`);
    if (mentions) check(e.message.includes(mentions), `${what}: the message does not name ${mentions}: ${e.message}`);
    return;
  }
  throw new Failed(`${what}: expected ${status} / ${code}, but the call succeeded`);
}

// The resource's dates parsed (the SDK leaves a string it cannot parse), and,
// for one made just now, are now: in UTC.
function dates(resource, recent = true) {
  const now = Date.now();
  for (const name of ["dateCreated", "dateUpdated"]) {
    const value = resource[name];
    check(value instanceof Date, `${name} did not parse as a date: ${value}`);
    if (recent) check(Math.abs(now - value.getTime()) < 5 * 60 * 1000, `${name} is not now: ${value.toISOString()}`);
  }
}

function resource(v, to, channel, status) {
  check(/^VE[0-9a-f]{32}$/.test(v.sid), `a verification SID: ${v.sid}`);
  check(v.to === to, `to: ${v.to}, expected ${to}`);
  check(v.channel === channel, `channel: ${v.channel}, expected ${channel}`);
  check(v.status === status, `status of ${v.sid}: ${v.status}, expected ${status}`);
  dates(v);
  check(v.url === `${config.baseUrl}/v2/Services/${v.serviceSid}/Verifications/${v.sid}`, `url: ${v.url}`);
  const attempts = v.sendCodeAttempts;
  check(Array.isArray(attempts) && attempts.length > 0, `sendCodeAttempts: ${JSON.stringify(attempts)}`);
  for (const attempt of attempts) {
    check(
      typeof attempt.attempt_sid === "string" &&
        attempt.channel &&
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(attempt.time),
      `a send code attempt: ${JSON.stringify(attempt)}`,
    );
  }
}

// Starts a verification and returns it with the code delivered.
async function created(to, { service = A, channel = "whatsapp", ...more } = {}) {
  const had = await seen(to);
  const v = await service.verifications.create({ to, channel, ...more });
  resource(v, to, channel, "pending");
  return [v, await nextCode(to, had)];
}

async function checked(status, valid, what, by, service = A) {
  const c = await service.verificationChecks.create(by);
  check(
    c.status === status && c.valid === valid,
    `${what}: status ${c.status} valid ${c.valid}, expected ${status} ${valid}`,
  );
  dates(c);
  return c;
}

// The steps, in order.

async function serviceResource() {
  const s = await A.fetch();
  check(s.sid === serviceSidA, `the service's sid: ${s.sid}`);
  check(s.accountSid === accountA, `the service's accountSid: ${s.accountSid}`);
  check(typeof s.friendlyName === "string" && s.friendlyName, `friendlyName: ${s.friendlyName}`);
  check(Number.isInteger(s.codeLength) && s.codeLength >= 4, `codeLength: ${s.codeLength}`);
  dates(s, false);
}

async function createAndCheckByTo() {
  const to = phone();
  // Fields this service does not use are ignored, as an app may send them.
  const [v, code] = await created(to, { customFriendlyName: "Tienda Sol", appHash: "He42w354ol9" });
  check(v.serviceSid === serviceSidA, `serviceSid: ${v.serviceSid}`);
  check(v.accountSid === accountA, `accountSid: ${v.accountSid}`);
  check(v.sendCodeAttempts.length === 1, `one send: ${JSON.stringify(v.sendCodeAttempts)}`);
  check(code.length === (await A.fetch()).codeLength, `the code's length: ${code}`);
  let c = await checked("pending", false, "a wrong code", { to, code: wrong(code) });
  check(c.sid === v.sid && c.to === to, `the check's sid and to: ${c.sid} ${c.to}`);
  await otherClientSeesNothing(v, code);
  c = await checked("approved", true, "the right code, by To", { to, code });
  check(c.sid === v.sid && c.channel === "whatsapp", `the check: ${c.sid} ${c.channel}`);
  await refused("the right code again, by To", () => A.verificationChecks.create({ to, code }), 404, 20404);
  await refused(
    "the right code again, by VerificationSid",
    () => A.verificationChecks.create({ verificationSid: v.sid, code }),
    404,
    20404,
  );
  resource(await A.verifications(v.sid).fetch(), to, "whatsapp", "approved");
}

// Client B, with its own good credentials, meets A's SIDs as missing.
async function otherClientSeesNothing(v, code) {
  const otherService = service(accountB, keyB, serviceSidA);
  const tries = [
    ["B fetches A's service", () => otherService.fetch()],
    ["B creates in A's service", () => otherService.verifications.create({ to: v.to, channel: "whatsapp" })],
    ["B fetches A's verification", () => B.verifications(v.sid).fetch()],
    ["B fetches A's verification in A's service", () => otherService.verifications(v.sid).fetch()],
    ["B checks A's verification", () => B.verificationChecks.create({ verificationSid: v.sid, code })],
    ["B cancels A's verification", () => B.verifications(v.sid).update({ status: "canceled" })],
    ["B checks A's number", () => B.verificationChecks.create({ to: v.to, code })],
  ];
  for (const [what, call] of tries) await refused(what, call, 404, 20404);
  const still = await A.verifications(v.sid).fetch();
  check(still.status === "pending", `A's verification after B's tries: ${still.status}`);
}

async function checkByVerificationSid() {
  const to = phone();
  const [v, code] = await created(to);
  const c = await checked("approved", true, "the right code, by VerificationSid", {
    verificationSid: v.sid,
    code,
  });
  check(c.sid === v.sid && c.to === to, `the check's sid and to: ${c.sid} ${c.to}`);
  resource(await A.verifications(v.sid).fetch(), to, "whatsapp", "approved");
}

async function cancelAndApproveThroughUpdate() {
  let to = phone();
  let [v, code] = await created(to);
  resource(await A.verifications(v.sid).update({ status: "canceled" }), to, "whatsapp", "canceled");
  resource(await A.verifications(v.sid).fetch(), to, "whatsapp", "canceled");
  await refused("the code of a canceled one", () => A.verificationChecks.create({ to, code }), 404, 20404);
  await refused("canceling it again", () => A.verifications(v.sid).update({ status: "canceled" }), 404, 20404);

  to = phone();
  [v, code] = await created(to);
  await refused(
    "an update to pending",
    () => A.verifications(v.sid).update({ status: "pending" }),
    400,
    60200,
    "Status",
  );
  resource(await A.verifications(v.sid).update({ status: "approved" }), to, "whatsapp", "approved");
  await refused("the code of an approved one", () => A.verificationChecks.create({ to, code }), 404, 20404);
}

async function attemptsLimit() {
  const to = phone();
  const [v, code] = await created(to);
  // A blank code (an empty input box) is a bad parameter, not an attempt.
  await refused("a blank code", () => A.verificationChecks.create({ to, code: "" }), 400, 60200, "Code");
  // Each allowed wrong code counts; the one that uses the last says so, the next check is 60202.
  for (let n = 1; n <= config.maxAttempts; n++) {
    const status = n < config.maxAttempts ? "pending" : "max_attempts_reached";
    await checked(status, false, `wrong code ${n} of ${config.maxAttempts}`, { to, code: wrong(code) });
  }
  await refused("the right code after the attempts", () => A.verificationChecks.create({ to, code }), 429, 60202);
  await refused(
    "by VerificationSid after the attempts",
    () => A.verificationChecks.create({ verificationSid: v.sid, code }),
    429,
    60202,
  );
  resource(await A.verifications(v.sid).fetch(), to, "whatsapp", "max_attempts_reached");
  // Unlike Twilio, a new verification can start at once.
  const [fresh, freshCode] = await created(to);
  check(fresh.sid !== v.sid, `a create after the attempts starts a new verification: ${fresh.sid}`);
  await checked("approved", true, "the new verification's code", { to, code: freshCode });
}

async function repeatedCreate() {
  let to = phone();
  const [v, first] = await created(to);
  const had = await seen(to);
  const again = await A.verifications.create({ to, channel: "whatsapp" });
  check(again.sid === v.sid, `a repeated create answers the same verification: ${again.sid} != ${v.sid}`);
  resource(again, to, "whatsapp", "pending");
  check(again.sendCodeAttempts.length === 2, `two sends: ${JSON.stringify(again.sendCodeAttempts)}`);
  const second = await nextCode(to, had);
  check(second === first, "a resend sends the same code, as Twilio's does");
  // The first message, arriving late, still works.
  await checked("approved", true, "the first code after a resend", { to, code: first });

  to = phone();
  await created(to);
  for (let n = 1; n < config.maxSends; n++) await A.verifications.create({ to, channel: "whatsapp" });
  await refused("a send past max_sends", () => A.verifications.create({ to, channel: "whatsapp" }), 429, 60203);

  to = phone();
  await created(to, { service: B });
  await refused("a resend too soon", () => B.verifications.create({ to, channel: "whatsapp" }), 429, 20429);
}

async function smsAndLocale() {
  let to = phone();
  const [, code] = await created(to, { channel: "sms" });
  await checked("approved", true, "an sms verification's code", { to, code });
  await refused(
    "sms without sms_as_whatsapp",
    () => B.verifications.create({ to: phone(), channel: "sms" }),
    400,
    60200,
    "sms_as_whatsapp",
  );
  to = phone();
  const had = await seen(to);
  await A.verifications.create({ to, channel: "whatsapp", locale: "en-US" });
  const message = await nextMessage(to, had);
  check(message.startsWith("Your verification code"), `Locale en-US: ${message}`);
}

async function badInput() {
  await refused("To not a phone", () => A.verifications.create({ to: "12", channel: "whatsapp" }), 400, 60200, "To");
  for (const channel of ["call", "email", "sna", "auto"]) {
    await refused(`Channel ${channel}`, () => A.verifications.create({ to: phone(), channel }), 400, 60200, "Channel");
  }
  await refused("a check of no verification", () => A.verificationChecks.create({ code: "123456" }), 400, 60200);
  await refused(
    "a check of a number with none",
    () => A.verificationChecks.create({ to: phone(), code: "123456" }),
    404,
    20404,
  );
  await refused("an unknown verification", () => A.verifications(`VE${"0".repeat(32)}`).fetch(), 404, 20404);
  const unknownService = service(accountA, keyA, `VA${"0".repeat(32)}`);
  await refused("an unknown service", () => unknownService.fetch(), 404, 20404);
}

async function wrongCredentials() {
  for (const [what, account, key] of [
    ["a wrong key", accountA, "otpk_not-a-key"],
    ["B's key with A's Account SID", accountA, keyB],
    ["A's key with B's Account SID", accountB, keyA],
    ["an unknown Account SID", `AC${"0".repeat(32)}`, keyA],
  ]) {
    const s = service(account, key, serviceSidA);
    await refused(what, () => s.fetch(), 401, 20003);
    await refused(`${what}, creating`, () => s.verifications.create({ to: phone(), channel: "whatsapp" }), 401, 20003);
  }
}

const steps = [
  serviceResource,
  createAndCheckByTo,
  checkByVerificationSid,
  cancelAndApproveThroughUpdate,
  attemptsLimit,
  repeatedCreate,
  smsAndLocale,
  badInput,
  wrongCredentials,
];
for (const step of steps) {
  try {
    await step();
  } catch (e) {
    const answer = e instanceof twilio.RestException ? ` (HTTP ${e.status}, code ${e.code})` : "";
    console.error(`FAILED in ${step.name}: ${e instanceof Failed ? e.message : (e?.stack ?? e) + answer}`);
    process.exit(1);
  }
  console.log(`ok ${step.name}`);
}
console.log("twilio-node: the whole flow passed");
// The SDK's keep-alive agent must not hold the process open.
process.exit(0);
