"""KOL personas (read, create, edit, history) and the stock directory."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from config import Persona
from posting import Change, KolChange, NotFound, PostingService, Review, Stock


class CatalogController(Controller):
    path = "/v1"
    tags = ["catalog"]

    @get("/kols", summary="Every KOL persona, by serial")
    async def kols(self, service: NamedDependency[PostingService]) -> list[Persona]:
        return await service.store.list_kols()

    @get("/kols/{serial:int}", summary="One KOL persona")
    async def kol(self, serial: FromPath[int],
                  service: NamedDependency[PostingService]) -> Persona:
        persona = await service.store.get_kol(serial)
        if persona is None:
            raise NotFound("serial", f"no KOL with serial {serial}")
        return persona

    @post("/kols", status_code=201, summary="Add a KOL persona under a free serial")
    async def create_kol(self, request: Request, data: JSONBody[Persona],
                         service: NamedDependency[PostingService]) -> Persona:
        review = Review(service.pool, backends=service.backends.names())
        return await review.create_kol(data, actor=str(request.user))

    @patch("/kols/{serial:int}", summary="Change some fields of a KOL persona")
    async def update_kol(self, request: Request, serial: FromPath[int],
                         data: JSONBody[KolChange],
                         service: NamedDependency[PostingService]) -> Persona:
        review = Review(service.pool, backends=service.backends.names())
        return await review.update_kol(serial, data, actor=str(request.user))

    @get("/kols/{serial:int}/history", summary="Every change to a KOL persona")
    async def kol_history(self, serial: FromPath[int],
                          service: NamedDependency[PostingService]) -> list[Change]:
        return await Review(service.pool).kol_history(serial)

    @get("/stocks", summary="Find TWSE and TPEx listings by code or name")
    async def stocks(self, q: FromQuery[str], service: NamedDependency[PostingService],
                     limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10) -> list[Stock]:
        return service.stocks.search(q, limit=limit)
