"""KOL personas and the stock directory."""

from __future__ import annotations

from litestar.di import NamedDependency
from litestar import Controller, get
from litestar.params import FromQuery

from posting import PostingService, Stock


class CatalogController(Controller):
    path = "/v1"
    tags = ["catalog"]

    @get("/stocks", summary="Find TWSE and TPEx listings by code or name")
    async def stocks(
        self, q: FromQuery[str], service: NamedDependency[PostingService], limit: FromQuery[int] = 10
    ) -> list[Stock]:
        return service.stocks.search(q, limit=limit)
