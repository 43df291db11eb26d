"""A small generated shop's traffic: normal requests, and ones no normal user sends."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

WORDS = [
    "lamp",
    "desk",
    "chair",
    "table",
    "brass",
    "oak",
    "walnut",
    "shelf",
    "mirror",
    "rug",
    "vase",
    "clock",
    "sofa",
    "bench",
    "stool",
    "cabinet",
    "drawer",
    "frame",
    "candle",
    "pillow",
]
HEADERS = {"Host": "shop.example", "User-Agent": "Mozilla/5.0", "Accept": "*/*"}


def normal(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """``n`` ordinary requests: item pages, searches, sign-ups (form), item creation (JSON)."""
    rng = random.Random(seed)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            uri = f"/items?page={rng.randint(1, 40)}&sort={rng.choice(['name', 'price'])}"
            yield {"method": "GET", "uri": uri, "headers": HEADERS, "body": "", "label": "normal"}
        elif kind == 1:
            q = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
            yield {
                "method": "GET",
                "uri": f"/search?q={q.replace(' ', '+')}",
                "headers": HEADERS,
                "body": "",
                "label": "normal",
            }
        elif kind == 2:
            name = rng.choice(WORDS) + str(rng.randint(1, 999))
            body = f"user={name}&email={name}%40mail.example&zip={rng.randint(10000, 99999)}"
            yield {
                "method": "POST",
                "uri": "/signup",
                "headers": {**HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
                "body": body,
                "label": "normal",
            }
        else:
            body = json.dumps({"name": rng.choice(WORDS).title(), "price": rng.randint(1, 500)})
            yield {
                "method": "POST",
                "uri": "/items",
                "headers": {**HEADERS, "Content-Type": "application/json"},
                "body": body,
                "label": "normal",
            }


ANOMALIES: dict[str, dict[str, Any]] = {
    "sqli_in_page": {"method": "GET", "uri": "/items?page=1%27+OR+%271%27%3D%271&sort=name"},
    "letters_in_zip": {
        "method": "POST",
        "uri": "/signup",
        "headers": {**HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
        "body": "user=oak12&email=oak12%40mail.example&zip=abcde",
    },
    "unknown_parameter": {"method": "GET", "uri": "/items?page=2&sort=name&debug=true"},
    "backup_file": {"method": "GET", "uri": "/items.bak"},
    "overflow": {"method": "GET", "uri": "/search?q=" + "A" * 3000},
    "script_in_name": {
        "method": "POST",
        "uri": "/items",
        "headers": {**HEADERS, "Content-Type": "application/json"},
        "body": json.dumps({"name": "<script>alert(1)</script>", "price": 3}),
    },
}


def anomalies() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, req in ANOMALIES.items():
        yield name, {"headers": HEADERS, "body": "", **req, "label": "anomalous", "category": name}
