"""Stripe on loopback for tests: `localstripe` (customers, payment intents, charges, refunds) and a small
server of ours in front of it that answers what localstripe lacks (Prices, Checkout Sessions, the
Customer Portal) and the Subscriptions on those Prices (create, retrieve, cancel) in Stripe's JSON shapes, plays the hosted Checkout page, and delivers webhook events
signed with Stripe's scheme. Every other `/v1/...` request is passed through to localstripe."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.mail import free_port

SECRET_KEY = "sk_test_clearbg_loopback"
WEBHOOK_SECRET = "whsec_clearbg_loopback_secret"
LOCALSTRIPE = (  # in memory only (its store otherwise pickles itself to /tmp on every write), loopback only
    "import sys; from aiohttp import web; from localstripe.resources import Store; Store.dump_to_disk = lambda self: None; "
    "from localstripe.server import app; web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None)"
)


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value: HMAC-SHA256 over "<t>.<payload>", as Stripe sends it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event(type_: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event", "type": type_, "created": int(time.time()),
        "api_version": "2025-01-27.acacia", "livemode": False, "pending_webhooks": 1, "data": {"object": obj},
    }  # fmt: skip


def decode_form(body: str) -> dict:
    """Stripe's form encoding (`line_items[0][price]=...`) back into nested dicts and lists."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(node):
        if isinstance(node, dict):
            node = {k: listify(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    return listify(root)


class FakeStripe:
    """The API base the app's Stripe client talks to."""

    def __init__(self, localstripe_url: str) -> None:
        self.localstripe_url = localstripe_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook_url = ""
        self.delivery_delay = 0.0
        self.prices: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.sent_events: list[dict] = []  # what Stripe sends on its own (a cancelled subscription's event)
        self.requests: list[tuple[str, str, dict]] = []
        self.deliveries: list[tuple[dict, int]] = []
        self.ls = httpx.Client(base_url=localstripe_url, auth=(SECRET_KEY, ""), timeout=10)

    # Stripe objects --------------------------------------------------------------------------------------

    def create_price(self, params: dict) -> dict:
        price = {
            "id": f"price_{secrets.token_hex(8)}", "object": "price", "active": True, "currency": params["currency"],
            "unit_amount": int(params["unit_amount"]), "product": f"prod_{secrets.token_hex(6)}", "livemode": False,
            "metadata": params.get("metadata", {}), "recurring": params.get("recurring"),
            "type": "recurring" if params.get("recurring") else "one_time",
        }  # fmt: skip
        self.prices[price["id"]] = price
        return price

    def create_session(self, params: dict) -> tuple[int, dict]:
        items = params.get("line_items") or []
        if params.get("mode") not in ("payment", "subscription") or len(items) != 1 or items[0].get("price") not in self.prices:
            return 400, {"error": {"type": "invalid_request_error", "message": "Invalid checkout session parameters"}}
        if self.ls.get(f"/v1/customers/{params.get('customer')}").status_code != 200:
            return 400, {"error": {"type": "invalid_request_error", "message": "No such customer"}}
        price = self.prices[items[0]["price"]]
        checkout_id = f"cs_test_{secrets.token_hex(16)}"
        checkout = {
            "id": checkout_id, "object": "checkout.session", "url": f"{self.url}/pay/{checkout_id}", "status": "open",
            "payment_status": "unpaid", "mode": params["mode"], "customer": params["customer"],
            "client_reference_id": params.get("client_reference_id"), "metadata": params.get("metadata", {}),
            "success_url": params["success_url"], "cancel_url": params["cancel_url"], "amount_total": price["unit_amount"],
            "currency": price["currency"], "payment_intent": None, "subscription": None, "livemode": False,
        }  # fmt: skip
        checkout["_params"] = params
        self.sessions[checkout_id] = checkout
        return 200, checkout

    def create_subscription(self, params: dict) -> tuple[int, dict]:
        """POST /v1/subscriptions: one item on one of our Prices, for a customer localstripe knows."""
        items = params.get("items") or []
        if len(items) != 1 or items[0].get("price") not in self.prices:
            return 400, {"error": {"type": "invalid_request_error", "message": "No such price", "param": "items"}}
        if self.ls.get(f"/v1/customers/{params.get('customer')}").status_code != 200:
            return 400, {"error": {"type": "invalid_request_error", "message": "No such customer", "param": "customer"}}
        now = int(time.time())
        subscription = {
            "id": f"sub_{secrets.token_hex(8)}", "object": "subscription", "customer": params["customer"], "status": "active",
            "created": now, "start_date": now, "canceled_at": None, "ended_at": None, "cancel_at_period_end": False,
            "metadata": params.get("metadata", {}), "livemode": False,
            "items": {"object": "list", "data": [{"id": f"si_{secrets.token_hex(6)}", "object": "subscription_item",
                                                  "price": self.prices[items[0]["price"]], "quantity": 1}]},
        }  # fmt: skip
        self.subscriptions[subscription["id"]] = subscription
        return 200, subscription

    def cancel_subscription(self, subscription_id: str) -> tuple[int, dict]:
        """DELETE /v1/subscriptions/{id}: canceled at once, and `customer.subscription.deleted` sent. As Stripe
        does, a subscription already canceled is "No such subscription" (a 404), though it can still be retrieved."""
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None or subscription["status"] == "canceled":
            return self.missing("subscription", subscription_id)
        now = int(time.time())
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        deleted = event("customer.subscription.deleted", dict(subscription))
        self.sent_events.append(deleted)
        if self.webhook_url:
            threading.Thread(target=self._deliver_later, args=([deleted],), daemon=True).start()
        return 200, subscription

    @staticmethod
    def missing(kind: str, object_id: str) -> tuple[int, dict]:
        return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "id",
                               "message": f"No such {kind}: '{object_id}'"}}  # fmt: skip

    def public(self, checkout: dict) -> dict:
        return {k: v for k, v in checkout.items() if not k.startswith("_")}

    def pay(self, checkout_id: str, *, delayed: bool = False) -> list[dict]:
        """What the hosted page does when the buyer pays: a real PaymentIntent in localstripe (a pack),
        or a subscription and its first invoice. Returns the events Stripe would send."""
        checkout = self.sessions[checkout_id]
        params = checkout["_params"]
        if checkout["mode"] == "payment":
            card = self.ls.post("/v1/payment_methods", data={"type": "card", "card[number]": "4242424242424242",
                                "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123"}).json()  # fmt: skip
            metadata = (params.get("payment_intent_data") or {}).get("metadata", {})
            intent = self.ls.post("/v1/payment_intents", data={
                "amount": checkout["amount_total"], "currency": checkout["currency"], "customer": checkout["customer"],
                "payment_method": card["id"], "confirm": "true", **{f"metadata[{k}]": v for k, v in metadata.items()},
            }).json()  # fmt: skip
            assert intent["status"] == "succeeded", intent
            checkout["payment_intent"] = intent["id"]
            checkout.update(status="complete", payment_status="unpaid" if delayed else "paid")
            events = [event("checkout.session.completed", self.public(checkout))]
            if delayed:
                checkout["payment_status"] = "paid"
                events.append(event("checkout.session.async_payment_succeeded", self.public(checkout)))
            return events
        metadata = (params.get("subscription_data") or {}).get("metadata", {})
        status, subscription = self.create_subscription({"customer": checkout["customer"], "metadata": metadata,
                                                         "items": [{"price": params["line_items"][0]["price"]}]})  # fmt: skip
        assert status == 200, subscription
        checkout["subscription"] = subscription["id"]
        checkout.update(status="complete", payment_status="paid")
        first = self.invoice(checkout, metadata=metadata, reason="subscription_create")
        return [event("checkout.session.completed", self.public(checkout)), event("invoice.paid", first)]

    def invoice(self, checkout: dict, *, metadata: dict, reason: str = "subscription_cycle") -> dict:
        price = self.prices[checkout["_params"]["line_items"][0]["price"]]
        invoice_id = f"in_{secrets.token_hex(8)}"
        return {
            "id": invoice_id, "object": "invoice", "customer": checkout["customer"], "status": "paid",
            "billing_reason": reason, "amount_paid": price["unit_amount"], "currency": price["currency"],
            "hosted_invoice_url": f"{self.url}/invoices/{invoice_id}",
            "parent": {"type": "subscription_details",
                       "subscription_details": {"subscription": checkout["subscription"], "metadata": metadata}},
            "lines": {"object": "list", "data": [{"id": f"il_{secrets.token_hex(6)}", "amount": price["unit_amount"],
                      "pricing": {"price_details": {"price": price["id"], "product": price["product"]}}}]},
        }  # fmt: skip

    def refund(self, payment_intent: str, amount: int | None = None) -> dict:
        """Refund in localstripe and return the `charge.refunded` event Stripe would send for it."""
        charge = self.ls.get(f"/v1/payment_intents/{payment_intent}").json()["latest_charge"]
        charge_id = charge["id"] if isinstance(charge, dict) else charge
        if amount is None:  # the rest (localstripe would refund the whole charge again)
            charge = self.ls.get(f"/v1/charges/{charge_id}").json()
            amount = charge["amount"] - charge["amount_refunded"]
        assert self.ls.post("/v1/refunds", data={"payment_intent": payment_intent, "amount": amount}).status_code == 200
        return event("charge.refunded", self.ls.get(f"/v1/charges/{charge_id}").json())

    def deliver(self, event_: dict, *, secret: str = WEBHOOK_SECRET) -> int:
        """POST a signed event to the app's webhook, as Stripe does."""
        payload = json.dumps(event_).encode()
        response = httpx.post(self.webhook_url, content=payload, timeout=30,
                              headers={"Stripe-Signature": sign(payload, secret), "Content-Type": "application/json"})  # fmt: skip
        self.deliveries.append((event_, response.status_code))
        return response.status_code

    # HTTP -----------------------------------------------------------------------------------------------

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict | str, content_type="application/json", headers=None):
                data = (json.dumps(body) if isinstance(body, dict) else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> str:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()

            def do_GET(self):
                path = urlsplit(self.path).path
                parts = path.strip("/").split("/")
                if path.startswith("/pay/") and parts[1] in fake.sessions:
                    events = fake.pay(parts[1])
                    threading.Thread(target=fake._deliver_later, args=(events,), daemon=True).start()
                    return self.reply(303, "", "text/plain", {"Location": fake.sessions[parts[1]]["success_url"]})
                if path.startswith("/v1/prices/") and parts[2] in fake.prices:
                    return self.reply(200, fake.prices[parts[2]])
                if path.startswith("/v1/checkout/sessions/") and parts[3] in fake.sessions:
                    return self.reply(200, fake.public(fake.sessions[parts[3]]))
                if path.startswith("/v1/subscriptions/") and len(parts) == 3:
                    found = fake.subscriptions.get(parts[2])
                    return self.reply(*((200, found) if found else fake.missing("subscription", parts[2])))
                self.proxy("GET")

            def do_POST(self):
                path = urlsplit(self.path).path
                if path in ("/v1/prices", "/v1/checkout/sessions", "/v1/billing_portal/sessions", "/v1/subscriptions"):
                    params = decode_form(self.body())
                    fake.requests.append(("POST", path, params))
                    if path == "/v1/prices":
                        return self.reply(200, fake.create_price(params))
                    if path == "/v1/subscriptions":
                        return self.reply(*fake.create_subscription(params))
                    if path == "/v1/checkout/sessions":
                        status, body = fake.create_session(params)
                        return self.reply(status, fake.public(body) if status == 200 else body)
                    return self.reply(200, {"id": f"bps_{secrets.token_hex(8)}", "object": "billing_portal.session",
                                            "customer": params.get("customer"), "return_url": params.get("return_url"),
                                            "url": f"{fake.url}/portal/{params.get('customer')}"})  # fmt: skip
                self.proxy("POST", self.body().encode())

            def do_DELETE(self):
                path = urlsplit(self.path).path
                parts = path.strip("/").split("/")
                if path.startswith("/v1/subscriptions/") and len(parts) == 3:
                    fake.requests.append(("DELETE", path, {}))
                    return self.reply(*fake.cancel_subscription(parts[2]))
                self.proxy("DELETE")

            def proxy(self, method: str, data: bytes | None = None):
                request = urllib.request.Request(fake.localstripe_url + self.path, data=data, method=method)
                for name in ("Authorization", "Content-Type", "Idempotency-Key", "Stripe-Version"):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, body = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, body = error.code, error.read()
                self.reply(status, body.decode(), "application/json")

        return Handler

    def _deliver_later(self, events: list[dict]) -> None:
        time.sleep(self.delivery_delay)
        for item in events:
            self.deliver(item)

    @contextmanager
    def serve(self) -> Iterator[FakeStripe]:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            self.ls.close()


@contextmanager
def localstripe() -> Iterator[str]:
    """localstripe on 127.0.0.1 only (its own launcher listens on every interface), empty."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", LOCALSTRIPE, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/v1/customers", auth=(SECRET_KEY, ""), timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        else:
            raise RuntimeError("localstripe did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def stripe_on_loopback() -> Iterator[FakeStripe]:
    with localstripe() as url, FakeStripe(url).serve() as fake:
        yield fake
