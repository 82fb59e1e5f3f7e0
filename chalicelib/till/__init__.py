"""The till API (``/pos/…``): what a cashier asks of siyu before and at the sale (README, "The
till API"). ``coupons``: check a coupon against a basket, redeem it once for an order."""
