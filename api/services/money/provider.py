"""The payment provider: a sandbox that always succeeds, clearly in test mode.

No card data ever reaches us; the sandbox stands where a real provider (Stripe,
Adyen ...) would plug in behind the same three calls. References are
deterministic (``sandbox_ch_...``, ``sandbox_re_...``, ``sandbox_po_...``) so
retries and demo runs produce the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PROVIDER = "sandbox"
TEST_MODE = True
# The ledger account standing for the outside world behind this provider.
EXTERNAL_ACCOUNT = f"external:{PROVIDER}"


@dataclass(frozen=True)
class PaymentResult:
    reference: str
    amount_cents: int
    currency: str
    status: str = "succeeded"
    test_mode: bool = TEST_MODE


def _ref(prefix: str, key: str) -> str:
    return f"sandbox_{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class SandboxProvider:
    """Charges, refunds and payouts that succeed instantly and move no real money."""

    name = PROVIDER
    test_mode = TEST_MODE

    def charge(self, *, amount_cents: int, currency: str, key: str) -> PaymentResult:
        """Charge the learner; ``key`` identifies the purchase (e.g. ``booking:12``)."""
        return PaymentResult(_ref("ch", key), amount_cents, currency)

    def refund(self, *, charge_reference: str, amount_cents: int, currency: str) -> PaymentResult:
        return PaymentResult(_ref("re", charge_reference), amount_cents, currency)

    def payout(self, *, amount_cents: int, currency: str, key: str) -> PaymentResult:
        return PaymentResult(_ref("po", key), amount_cents, currency)


provider = SandboxProvider()
