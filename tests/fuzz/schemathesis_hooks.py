"""Schemathesis hooks for `make test` (tests/fuzz/schemathesis.sh), against a running
`bonus dev` seeded with infra/demo.yaml.

- Every generated webhook body is signed the way its platform signs it (Standard Webhooks,
  Shopify, WooCommerce), so that the fuzzed bodies reach the parsers, not just the signature
  check.
- Path parameters are mostly the demo's own partner, member and reward ids, so that requests
  reach the handlers; the rest stay as generated.
- A check of our own: every 4xx is the JSON error {"error": {"code", "message"}}.

FUZZ_HOOK_LOG=file writes each signed delivery's path, headers and body start there.
"""

import base64
import hashlib
import hmac
import os
import random
import time

import schemathesis
from requests import compat

# The demo's secrets and ids (infra/demo.yaml): local only.
STANDARD_SECRET = "whsec_ZGVtby12ZWxvLXNob3Atd2ViaG9vay1zZWNyZXQ="
SHOPIFY_SECRET = "shpss_demo_velo_shop_secret_0001"
WOO_SECRET = "wc_demo_velo_shop_secret_0001"
KNOWN = {
    "partner_id": "velo-shop",
    "member_id": "M-1001",
    "reward_id": "espresso-cup",
    "programme_id": "velo",
}

_random = random.Random(int(os.environ.get("FUZZ_SEED", "17")))
_deliveries = 0


# Credentials the fuzzer must never take away from itself: schemathesis reuses ids it saw in
# answers (GET /v1/partner/keys), and revoking the key it calls with, or removing the secret
# the hooks sign with, would leave the rest of the run at 401. Revocation and removal are
# tested in tests/tests/partner_credentials.rs; here they only ever name no key and no secret.
PINNED = {
    "key_id": "0000000000000000",
    "secret_id": "0000000000000000",
}


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if not path_parameters:
        return path_parameters
    for name, value in KNOWN.items():
        if name in path_parameters and _random.random() < 0.8:
            path_parameters[name] = value
    for name, value in PINNED.items():
        if name in path_parameters:
            path_parameters[name] = value
    return path_parameters


def _body_bytes(case):
    """The bytes requests will send for a JSON body (requests.compat.json, as it does)."""
    body = case.body
    if type(body).__name__ == "NotSet":
        return b""
    if body is None:
        return b"null"  # what schemathesis sends for a null body
    if isinstance(body, bytes):
        return body
    if isinstance(body, str) and not (case.media_type or "").endswith("json"):
        return body.encode("utf-8")
    return compat.json.dumps(body, allow_nan=False).encode("utf-8")


def _hmac_b64(secret, body):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@schemathesis.hook
def before_call(context, case, kwargs):
    global _deliveries
    # Also here: path parameters may come from earlier answers after map_path_parameters.
    if case.path_parameters:
        for name, value in PINNED.items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
    path = case.path
    if not path.startswith("/v1/partners/") or case.method.upper() != "POST":
        return
    if not (case.media_type or "application/json").endswith("json"):
        return
    try:
        body = _body_bytes(case)
    except (TypeError, ValueError):
        return
    _deliveries += 1
    headers = case.headers if case.headers is not None else {}
    if path.endswith("/webhooks/shopify"):
        headers["X-Shopify-Hmac-Sha256"] = _hmac_b64(SHOPIFY_SECRET, body)
        headers.setdefault("X-Shopify-Topic", "orders/paid")
    elif path.endswith("/webhooks/woocommerce"):
        headers["X-WC-Webhook-Signature"] = _hmac_b64(WOO_SECRET, body)
        headers.setdefault("X-WC-Webhook-Topic", "order.updated")
    else:
        msg_id = f"fuzz-{_deliveries}"
        ts = str(int(time.time()))
        key = base64.b64decode(STANDARD_SECRET[len("whsec_"):])
        signed = f"{msg_id}.{ts}.".encode() + body
        sig = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = ts
        headers["webhook-signature"] = f"v1,{sig}"
    case.headers = headers
    if os.environ.get("FUZZ_HOOK_LOG"):
        with open(os.environ["FUZZ_HOOK_LOG"], "a") as log:
            log.write(f"{path} {sorted(headers)} {body[:120]!r}\n")


@schemathesis.check
def json_error_on_4xx(ctx, response, case):
    """Every 4xx answer is {"error": {"code": non-empty, "message": string}}."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        payload = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body: {response.text[:200]!r}")
    error = payload.get("error") if isinstance(payload, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and error["code"]
        and isinstance(error.get("message"), str)
    ):
        raise AssertionError(f"{response.status_code} is not the JSON error: {response.text[:200]!r}")
    return None
