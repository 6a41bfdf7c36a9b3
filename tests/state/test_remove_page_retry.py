"""The page retries by itself when the inference pool is busy: the real `RemoveState` background events,
run as Reflex runs them (a state proxy in an event context), against a real pool whose only slot is
taken, show "Busy, retrying in N s…" for the pool's Retry-After, then finish the job."""

from __future__ import annotations

import asyncio

import pytest
import reflex as rx
from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.token import BaseStateToken
from reflex.istate.proxy import StateProxy
from reflex.state import RouterData
from reflex_base.event.context import EventContext

from clearbg_app.api.middleware.event_socket import scrubbed_headers
from clearbg_app.http.cookies import SESSION_COOKIE, VISITOR_COOKIE
from clearbg_app.inference import InferenceConfig, Job
from clearbg_app.models import EntryKind
from clearbg_app.services import accounts, credits, images, removal
from clearbg_app.services.security import sha256_hex
from clearbg_app.state import remove
from clearbg_app.state.remove import RemoveState
from tests.conftest import sample_bytes
from tests.factories import GatedPool, verified_user
from tests.inference.conftest import MODEL_PATH

VISITOR_TOKEN = "visitor-token-" + "x" * 30


@pytest.fixture
def pool():
    """A real pool with one slot and nothing reserved, so one running job makes the page's job busy."""
    pool = GatedPool(InferenceConfig(model_path=MODEL_PATH, workers=1, queue_size=0, web_reserved=0, warm_up=False))
    pool.gate.set()
    yield pool
    pool.gate.set()
    pool.close()


def occupy(pool: GatedPool):
    """Take the pool's only slot with a job that waits until the countdown has begun."""
    pool.gate.clear()
    return pool.submit(Job(sample_bytes("bike.jpg"), max_pixels=50_000_000), lane="web")


def run_event(handler: str, cookie: str, *args) -> list[dict]:
    """Run one of RemoveState's background events to the end, with the tab's handshake as the event socket
    hands it to Reflex; the RemoveState deltas it emitted."""
    deltas: list[dict] = []

    async def emit_delta(_token, delta):
        deltas.extend(values for name, values in delta.items() if name.endswith("remove____remove_state"))

    async def enqueue(_token, *_events):
        pass

    async def scenario():
        manager = StateManagerMemory()
        with EventContext(token="tab-1", state_manager=manager, enqueue_impl=enqueue, emit_delta_impl=emit_delta):
            root = await manager.get_state(BaseStateToken(ident="tab-1", cls=rx.State))
            handshake = {name.decode(): value.decode() for name, value in scrubbed_headers([(b"cookie", cookie.encode())])}
            root.router = RouterData.from_router_data({"headers": handshake, "pathname": "/"})
            state = root.get_substate(RemoveState.get_full_name().split("."))
            async with StateProxy(state) as proxy:
                proxy.stage = "working"
                if handler == "get_full_resolution":
                    proxy.image_id, proxy.stage = args[0], "done"
            deltas.clear()  # what the page was set up with
            await RemoveState.event_handlers[handler].fn(StateProxy(state), *args[:1] if handler == "process" else ())

    asyncio.run(scenario())
    return deltas


@pytest.fixture
def countdown(monkeypatch, pool):
    """The countdown's seconds pass at once; at the first one, the job that filled the pool finishes."""
    seconds: list[str] = []

    async def second():
        seconds.append("tick")
        pool.gate.set()
        await asyncio.to_thread(lambda: [future.result(60) for future in list(pool.blockers)])

    monkeypatch.setattr(remove, "_second", second)
    monkeypatch.setattr(removal, "default_pool", lambda: pool)
    return seconds


def test_a_busy_pool_makes_the_page_count_down_and_retry_a_preview(session, store, pool, countdown):
    image = images.store_upload(session, store=store, data=sample_bytes("horse.jpg"), filename="horse.jpg",
                                visitor_hash=sha256_hex(VISITOR_TOKEN))  # fmt: skip
    pool.blockers = [occupy(pool)]
    deltas = run_event("process", f"{VISITOR_COOKIE}={VISITOR_TOKEN}", str(image.id))
    messages = [delta["busy_message_rx_state_"] for delta in deltas if "busy_message_rx_state_" in delta]
    assert messages == ["Busy, retrying in 1 s…", ""] and len(countdown) == 1  # the pool's Retry-After: 1 s
    assert deltas[-1]["stage_rx_state_"] == "done" and deltas[-1]["image_id_rx_state_"] == str(image.id)
    session.expire_all()
    assert session.get(type(image), image.id).status == "done"


def test_a_busy_pool_makes_the_page_retry_a_full_resolution_without_charging_twice(session, store, pool, countdown, clock):
    buyer = verified_user(session, clock)
    credits.grant(session, user_id=buyer.id, units=500, kind=EntryKind.PURCHASE, reason="test", reference=f"test:{buyer.id}")
    session.commit()
    image = images.store_upload(session, store=store, data=sample_bytes("horse.jpg"), filename="horse.jpg",
                                visitor_hash=sha256_hex(VISITOR_TOKEN), user_id=buyer.id)  # fmt: skip
    images.process_image(session, store=store, image_id=image.id, pool=pool, max_pixels=250_000)
    token = accounts.start_session(session, user=buyer, user_agent="test", ip="127.0.0.1")
    pool.blockers = [occupy(pool)]
    cookie = f"{VISITOR_COOKIE}={VISITOR_TOKEN}; {SESSION_COOKIE}={token}"
    deltas = run_event("get_full_resolution", cookie, str(image.id))
    messages = [delta["busy_message_rx_state_"] for delta in deltas if "busy_message_rx_state_" in delta]
    assert countdown and messages == [f"Busy, retrying in {n} s…" for n in range(len(countdown), 0, -1)] + [""]
    assert deltas[-1].get("full_stage_rx_state_") == "done"
    session.expire_all()
    assert session.get(type(image), image.id).full_result_key
    assert credits.balance(session, user_id=buyer.id) == 400  # one credit, once
