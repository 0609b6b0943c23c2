"""Schemathesis hooks for ci/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

Authentication: the fuzzer calls every operation, `POST /api/auth/logout` and the session
revocations included, and those revoke the very token it is using; every later request would then
be a (documented, correct) 401 and the rest of the API would go untested. So the token comes from
a dynamic auth provider: it logs in as the fuzzed tenant's admin, and Schemathesis fetches a new
token and replays the request whenever an answer is 401 (`retry_on`, its default).
"""

import json
import os
import urllib.request

import schemathesis

BASE = os.environ["JTCRM_FUZZ_BASE"]
EMAIL = os.environ["JTCRM_FUZZ_EMAIL"]
PASSWORD = os.environ["JTCRM_FUZZ_PASSWORD"]


def login() -> str:
    req = urllib.request.Request(
        BASE + "/api/auth/login",
        method="POST",
        data=json.dumps({"email": EMAIL, "password": PASSWORD}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["access_token"]


@schemathesis.auth(refresh_interval=600, retry_on=[401])
class TenantAdmin:
    def get(self, case, ctx):
        return login()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Positive cases drop two values only the server can issue:

    - `cursor`, an opaque token (`next_cursor`): no schema describes the values that name a page,
      so a random string is never valid data (negative cases keep theirs and get `422
      invalid_cursor`);
    - `If-Match`, the version of the last read (`ETag`): a generated one names a stale version
      (`412`, documented) rather than valid data; without it the update is unconditional;

    and one value that is the company's data, not the API's: the keys of a lead's
    `custom_fields` are the custom fields the company defined (`tests/api/leads.rs` covers them),
    so positive cases send none.
    """
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return
    if case.query:
        case.query.pop("cursor", None)
    if case.headers:
        for name in [h for h in list(case.headers.keys()) if h.lower() == "if-match"]:
            del case.headers[name]
    if isinstance(case.body, dict) and case.operation.path.startswith("/api/leads"):
        case.body.pop("custom_fields", None)


# ---- Brazilian formats (crates/jtcrm-types/src/br.rs) ----
# The document names them (`format: cnpj`, …): check digits and area codes are beyond JSON
# Schema, so the fuzzer generates valid values from these strategies in positive cases.
from hypothesis import strategies as st


def _check_digit(digits, weights):
    r = sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return "0" if r < 2 else str(11 - r)


def _cnpj(base):
    d1 = _check_digit(base, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    d2 = _check_digit(base + d1, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return base + d1 + d2


def _cpf(base):
    d1 = _check_digit(base, list(range(10, 1, -1)))
    d2 = _check_digit(base + d1, list(range(11, 1, -1)))
    return base + d1 + d2


_digits = lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
_not_same = lambda s: len(set(s)) > 1
_DDD = [11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38,
        41, 42, 43, 44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69,
        71, 73, 74, 75, 77, 79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97,
        98, 99]

schemathesis.openapi.format("cnpj", _digits(12).map(_cnpj).filter(_not_same))
schemathesis.openapi.format("cpf", _digits(9).map(_cpf).filter(_not_same))
schemathesis.openapi.format(
    "br-phone",
    st.builds(
        lambda ddd, mobile, rest: f"+55{ddd}{'9' + rest if mobile else rest}",
        st.sampled_from(_DDD),
        st.booleans(),
        _digits(8).filter(lambda s: s[0] in "2345"),
    ),
)
schemathesis.openapi.format("cep", _digits(8))
