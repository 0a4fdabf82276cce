"""Unique test data for the profiles service."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx


def unique() -> str:
    return uuid.uuid4().hex[:10]


def mobile() -> str:
    """A valid, random Chinese mobile number in local notation."""
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


def customer_payload(**overrides: Any) -> dict[str, Any]:
    u = unique()
    payload: dict[str, Any] = {
        "kind": "person",
        "display_name": f"Li Wei {u}",
        "email": f"Li.Wei.{u}@Example.COM",
        "phone": mobile(),
        "industry": "retail",
        "region": "east",
        "tags": ["VIP", "wholesale", "vip"],
        "owner_id": f"owner-{u}",
        "language": "zh-CN",
        "preferred_channel": "phone",
        "important_dates": [{"kind": "birthday", "month": 5, "day": 17}],
        "addresses": [{"kind": "home", "line1": f"88 Century Avenue {u}", "city": "Shanghai"}],
        "notes": f"likes tea {u}",
        "custom_attributes": {"segment": "K2"},
        "external_ref": f"ext-{u}",
    }
    payload.update(overrides)
    return payload


async def create_customer(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/customers", json=customer_payload(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())
