"""Rate limits in moving windows: the public API's per API key and per client IP (one minute, counted in
"megapixel images" like remove.bg), and the account forms' per network and per address (one hour).
In memory by default; in Redis when `CLEARBG_REDIS_URL` is set."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from clearbg_app.services.security import ip_prefix, sha256_hex
from clearbg_app.settings import get_settings
from clearbg_app.wording import plural


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit, with what the `X-RateLimit-*` and `Retry-After` headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the window has room again

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset_at - time.time())))
        return headers


class RateLimiter:
    """Moving windows of one minute, shared by every process that uses the same storage."""

    def __init__(self, storage_url: str = "", *, key_prefix: str = "clearbg") -> None:
        storage = RedisStorage(storage_url, key_prefix=key_prefix) if storage_url else MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)

    def hit(self, scope: str, identity: str, *, per_minute: int, cost: int = 1) -> Decision:
        """Spend `cost` of `identity`'s budget in `scope` ("key", "ip"); refused hits spend nothing."""
        return self._hit(RateLimitItemPerMinute(per_minute), scope, identity, cost)

    def hit_hourly(self, scope: str, identity: str, *, per_hour: int) -> Decision:
        """One hit in a moving one-hour window (sign-ups and password resets per network or address)."""
        return self._hit(RateLimitItemPerHour(per_hour), scope, identity, 1)

    def _hit(self, item: RateLimitItem, scope: str, identity: str, cost: int) -> Decision:
        allowed = self._limiter.hit(item, scope, identity, cost=min(cost, item.amount))
        reset, remaining = self._limiter.get_window_stats(item, scope, identity)
        return Decision(allowed and cost <= item.amount, item.amount, max(0, remaining), reset)


def network_and_address_refusal(scope: str, *, ip: str | None, email: str, per_network: int, per_address: int) -> str | None:
    """One attempt against a moving hour's budget per network (/24, /48: one network cannot try many
    addresses) and per address (many networks cannot flood one inbox), both keys hashed. None when both
    allow it; otherwise whose budget ran out and when it is back, e.g. "from your network; try again in
    12 minutes"."""
    limiter = default_limiter()
    for kind, identity, per_hour, whose in (
        ("network", ip_prefix(ip) or "unknown", per_network, "from your network"),
        ("address", email, per_address, "for this email address"),
    ):
        decision = limiter.hit_hourly(f"{scope}-{kind}", sha256_hex(identity), per_hour=per_hour)
        if not decision.allowed:
            minutes = max(1, math.ceil((decision.reset_at - time.time()) / 60))
            return f"{whose}; try again in {plural(minutes, 'minute')}"
    return None


@lru_cache
def default_limiter() -> RateLimiter:
    """The process-wide limiter for the configured storage."""
    return RateLimiter(get_settings().redis_url)
