"""Analytics only ever adds reporting-currency money (`KEHU_REPORTING_CURRENCY`, CNY here)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from shared.contracts import interactions as ic
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import days_ago, event, ids, purchase


def foreign_purchase(customer_id: uuid.UUID, converted: bool) -> tuple[object, uuid.UUID]:
    purchase_id = uuid.uuid4()
    conversion = (
        {
            "reporting_currency": "CNY",
            "fx_rate": Decimal("7.1"),
            "reporting_amount": Decimal("710"),
            "reporting_cost": Decimal("426"),
            "reporting_margin": Decimal("284"),
        }
        if converted
        else {}
    )
    contract = ic.PurchaseRecorded(
        customer_id=customer_id,
        occurred_at=days_ago(10),
        purchase_id=purchase_id,
        external_ref="USD-1",
        amount=Decimal("100"),
        cost=Decimal("60"),
        margin=Decimal("40"),
        currency="USD",
        status="paid",
        **conversion,
    )
    return event(contract), purchase_id


async def test_foreign_money_counts_only_as_converted_and_never_unconverted(
    analytics_db: AnalyticsDb,
) -> None:
    converted, unconverted = ids(2)
    usd, usd_id = foreign_purchase(converted, converted=True)
    refund = event(
        ic.PurchaseRefunded(
            customer_id=converted,
            occurred_at=days_ago(5),
            purchase_id=usd_id,
            refund_id=uuid.uuid4(),
            amount=Decimal("10"),
            margin=Decimal("4"),
            currency="USD",
            reporting_currency="CNY",
            fx_rate=Decimal("7.2"),
            reporting_amount=Decimal("72"),
            reporting_margin=Decimal("28.8"),
        )
    )
    legacy, _ = foreign_purchase(unconverted, converted=False)
    await analytics_db.apply(
        [usd, refund, purchase(converted, "5", amount="20"), legacy, purchase(unconverted, "1")]
    )
    await analytics_db.rerank()
    facts = await analytics_db.facts()
    # 710 + 20 - 72 and 284 + 5 - 28.8: CNY only, the USD originals never added.
    assert (facts[converted].revenue, facts[converted].contribution) == (
        Decimal("658"),
        Decimal("260.2"),
    )
    assert facts[converted].purchase_count == 2
    # A USD purchase that carried no converted amounts (recorded before conversion) is left out.
    assert (facts[unconverted].revenue, facts[unconverted].contribution) == (4, 1)
    assert facts[unconverted].purchase_count == 1
