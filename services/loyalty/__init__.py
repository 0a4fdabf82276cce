"""The loyalty service: points ledger with lots, levels, rewards and coupons."""
