"""Blind indexes of profiles: exact look-up and duplicate checks on encrypted e-mail, phone and
names (keyed HMACs of the normalised values, so no plaintext reaches the database).

Masking and audit follow from the privacy spec (`services.profiles.privacy`); the agents'
ownership limit is a rule of the service layer (`service.owner_limit`, `service.guard`).
"""

from __future__ import annotations

from typing import Any

from services.profiles.models import Customer
from shared.crypto import blind_index

# -- blind indexes -----------------------------------------------------------------------------


def name_key(name: str | None) -> str | None:
    return " ".join(name.split()).lower() if name else None


def email_index(email: str | None) -> str | None:
    return blind_index(email.strip().lower(), "customers.email") if email else None


def phone_index(phone: str | None) -> str | None:
    return blind_index(phone, "customers.phone") if phone else None


def display_name_index(name: str | None) -> str | None:
    key = name_key(name)
    return blind_index(key, "customers.display_name") if key else None


def duplicate_name_index(kind: str, name: str | None, company: str | None) -> str | None:
    """Organisations: the same name; persons: the same name within the same company."""
    key = name_key(name)
    if not key:
        return None
    if kind == "organisation":
        return blind_index(f"organisation\0{key}", "customers.name")
    company_key = name_key(company)
    if not company_key:
        return None
    return blind_index(f"person\0{key}\0{company_key}", "customers.name")


def derived(values: dict[str, Any]) -> dict[str, Any]:
    """The index and search columns of a customer, computed from its (plain) field values."""
    kind = values.get("kind") or "person"
    name = values.get("display_name")
    return {
        "email_index": email_index(values.get("email")),
        "phone_index": phone_index(values.get("phone")),
        "display_name_index": display_name_index(name),
        "name_index": duplicate_name_index(kind, name, values.get("company_name")),
        "search_name": name if kind == "organisation" and name else None,
    }


def refresh_derived(customer: Customer) -> None:
    fields = ("kind", "display_name", "email", "phone", "company_name")
    for key, value in derived({f: getattr(customer, f) for f in fields}).items():
        setattr(customer, key, value)
