"""After schemathesis: every admin operation it drove got real answers.

Usage: admin_answers.py SPEC.json REPORT.har (--only REGEX | --skip REGEX)

Prints, for each operation under /admin, the statuses schemathesis got. Fails
when one of them got no answer but 401 and 429 (the admin key's answers, not
the operation's), or got 429 for more than a tenth of its calls: the admin
throttle must slow only wrong keys, never the right one schemathesis sends.
An operation of the pass (paths matching --only, or all but those matching
--skip) that schemathesis never reached fails too: no admin operation goes
unfuzzed without a word.
"""

import collections
import json
import re
import sys
from urllib.parse import urlsplit

spec = json.load(open(sys.argv[1]))
har = json.load(open(sys.argv[2]))
if len(sys.argv) != 5 or sys.argv[3] not in ("--only", "--skip"):
    sys.exit(__doc__)
selected = re.compile(sys.argv[4])
only = sys.argv[3] == "--only"

operations = []
for path, methods in spec["paths"].items():
    if not path.startswith("/admin") or bool(selected.search(path)) != only:
        continue
    pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
    for method in methods:
        operations.append((method.upper(), path, pattern))

statuses = collections.defaultdict(collections.Counter)
for entry in har["log"]["entries"]:
    method = entry["request"]["method"].upper()
    path = urlsplit(entry["request"]["url"]).path
    for wanted, template, pattern in operations:
        if method == wanted and pattern.match(path):
            statuses[(method, template)][entry["response"]["status"]] += 1
            break

failures = []
for method, template, _ in operations:
    counts = statuses.get((method, template))
    if not counts:
        failures.append(f"{method} {template} was never called")
        continue
    total = sum(counts.values())
    summary = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
    print(f"{method} {template}: {total} calls ({summary})")
    real = total - counts[401] - counts[429]
    if real == 0:
        failures.append(f"{method} {template} never got past the admin key")
    if counts[429] * 10 > total:
        failures.append(f"{method} {template} got 429 for {counts[429]} of {total} calls")
if not statuses:
    failures.append("schemathesis drove no admin operation")
if failures:
    sys.exit("admin operations not fuzzed for real:\n  " + "\n  ".join(failures))
