"""A small, realistic API protected by pynomaly-security.

Items CRUD, a free-text search, and a JSON login against demo users. Run it
with ``make demo`` (which calls ``python -m examples``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from pynomaly_security import SecuritySettings, add_security_endpoints, setup_security_middleware

# Demo users; the password hashes are computed at start-up (scrypt, per-user salt).
DEMO_USERS = {"alice": "wonderland-2024", "bob": "builder-2024"}


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    price: float = Field(ge=0)


class Item(ItemIn):
    id: int


class LoginIn(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def create_app(settings: SecuritySettings | None = None) -> FastAPI:
    app = FastAPI(title="pynomaly-security example", version="1.0")
    stack = setup_security_middleware(app, settings=settings)
    add_security_endpoints(app)

    salts = {name: secrets.token_bytes(16) for name in DEMO_USERS}
    hashes = {name: _hash(pw, salts[name]) for name, pw in DEMO_USERS.items()}
    dummy_salt = secrets.token_bytes(16)
    items: dict[int, Item] = {}
    ids = itertools.count(1)

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"service": "example", "docs": "/docs"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/login")
    async def login(body: LoginIn) -> dict[str, str]:
        salt = salts.get(body.username, dummy_salt)
        expected = hashes.get(body.username, b"\0" * 64)
        # The hash runs for unknown users too, so timing does not reveal who exists.
        ok = hmac.compare_digest(_hash(body.password, salt), expected)
        if not ok or body.username not in hashes:
            raise HTTPException(status_code=401, detail="invalid credentials")
        return {"status": "ok", "user": body.username}

    @app.get("/items", response_model=list[Item])
    async def list_items() -> list[Item]:
        return list(items.values())

    @app.post("/items", response_model=Item, status_code=201)
    async def create_item(body: ItemIn) -> Item:
        item = Item(id=next(ids), **body.model_dump())
        items[item.id] = item
        return item

    @app.get("/items/{item_id}", response_model=Item)
    async def get_item(item_id: int) -> Item:
        if item_id not in items:
            raise HTTPException(status_code=404, detail="item not found")
        return items[item_id]

    @app.put("/items/{item_id}", response_model=Item)
    async def update_item(item_id: int, body: ItemIn) -> Item:
        if item_id not in items:
            raise HTTPException(status_code=404, detail="item not found")
        items[item_id] = Item(id=item_id, **body.model_dump())
        return items[item_id]

    @app.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        if items.pop(item_id, None) is None:
            raise HTTPException(status_code=404, detail="item not found")

    @app.get("/search", response_model=list[Item])
    async def search(q: Annotated[str, Query(max_length=500)] = "") -> list[Item]:
        needle = q.casefold()
        return [
            i
            for i in items.values()
            if needle in i.name.casefold() or needle in i.description.casefold()
        ]

    app.state.example_stack = stack
    return app
