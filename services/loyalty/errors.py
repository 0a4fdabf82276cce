"""Domain errors of the loyalty service, mapped to problem+json by the platform."""

from shared.problems import Conflict, NotFound, Unprocessable


class MemberNotFound(NotFound):
    slug, title = "member-not-found", "Member not found"


class RewardNotFound(NotFound):
    slug, title = "reward-not-found", "Reward not found"


class RedemptionNotFound(NotFound):
    slug, title = "redemption-not-found", "Redemption not found"


class CouponNotFound(NotFound):
    slug, title = "coupon-not-found", "Coupon not found"


class InsufficientPoints(Conflict):
    """409 naming the member's `spendable` points and the `needed` ones."""

    slug, title = "insufficient-points", "Not enough points"


class RewardUnavailable(Conflict):
    slug, title = "reward-unavailable", "Reward not available"


class RewardLimitReached(Conflict):
    slug, title = "reward-limit-reached", "Per-customer limit of this reward reached"


class RedemptionAlreadyCancelled(Conflict):
    slug, title = "redemption-already-cancelled", "Redemption already cancelled"


class CouponAlreadyUsed(Conflict):
    slug, title = "coupon-already-used", "Coupon already used"


class CouponNotUsable(Conflict):
    slug, title = "coupon-not-usable", "Coupon cannot be used"


class CustomerErased(Conflict):
    slug, title = "customer-erased", "The customer's data was erased"


class InvalidLevels(Unprocessable):
    slug, title = "invalid-levels", "Invalid membership levels"
