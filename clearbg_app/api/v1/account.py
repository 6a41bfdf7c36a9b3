"""`GET /api/v1.0/account`: the key owner's credits and free calls, in remove.bg's shape."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearbg_app.api.deps import ApiDeps
from clearbg_app.api.errors import ApiError
from clearbg_app.db import session_scope
from clearbg_app.models.billing import UNITS_PER_CREDIT
from clearbg_app.services import removal


def credit_number(units: int) -> float | int:
    value = Decimal(units) / UNITS_PER_CREDIT
    return int(value) if value == value.to_integral_value() else float(value)


def account_routes(deps: ApiDeps) -> list[Route]:
    """The account route, with the rate limiter of `deps`."""

    async def account(request: Request) -> Response:
        """GET /api/v1.0/account: the key owner's credits and free calls, in remove.bg's shape."""
        rate: dict[str, str] = {}
        try:
            rate = (await deps.hit_ip(request)).headers()
            user, _ = await deps.authenticate(request)
        except ApiError as error:
            return error.response(rate)

        def summary():
            with session_scope() as session:
                return removal.credit_summary(session, user_id=user.id)

        found = await asyncio.to_thread(summary)
        attributes = {
            "credits": {
                "total": credit_number(found.total),
                "subscription": credit_number(found.subscription),
                "payg": credit_number(found.payg),
                "enterprise": 0,
            },
            "api": {"free_calls": found.free_calls, "sizes": "all"},
        }
        return JSONResponse({"data": {"attributes": attributes}}, headers={**rate, "Cache-Control": "no-store"})

    return [Route("/api/v1.0/account", account, methods=["GET"])]
