"""Model prices in credits (1,000,000 credits = 1 USD) per 1M tokens, as exact integers.

Prices come from config first, then built-in defaults; a model matches the longest
configured prefix (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`), else the default rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from agenthost.events import Usage
from agenthost.settings import Price

CREDITS_PER_USD = 1_000_000


@dataclass(slots=True, frozen=True)
class Rates:
    """Credits per 1M tokens (so USD per 1M tokens × 1,000,000)."""

    input: int
    output: int
    cache_read: int
    cache_write: int

    def as_dict(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
        }


def _usd(value: float) -> int:
    # Through the decimal text of the price, so 0.075 becomes exactly 75000, not 74999.99….
    return int((Decimal(str(value)) * CREDITS_PER_USD).to_integral_value())


def rates_from_price(price: Price) -> Rates:
    cache_read = price.cache_read if price.cache_read is not None else price.input
    cache_write = price.cache_write if price.cache_write is not None else price.input
    return Rates(_usd(price.input), _usd(price.output), _usd(cache_read), _usd(cache_write))


BUILT_IN: dict[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, output=0.6, cache_read=0.075),
    "gpt-4o": Price(input=2.5, output=10.0, cache_read=1.25),
    "gpt-4.1-nano": Price(input=0.1, output=0.4, cache_read=0.025),
    "gpt-4.1-mini": Price(input=0.4, output=1.6, cache_read=0.1),
    "gpt-4.1": Price(input=2.0, output=8.0, cache_read=0.5),
    "gpt-5-nano": Price(input=0.05, output=0.4, cache_read=0.005),
    "gpt-5-mini": Price(input=0.25, output=2.0, cache_read=0.025),
    "gpt-5": Price(input=1.25, output=10.0, cache_read=0.125),
    "o3-mini": Price(input=1.1, output=4.4, cache_read=0.55),
    "o4-mini": Price(input=1.1, output=4.4, cache_read=0.275),
    "o3": Price(input=2.0, output=8.0, cache_read=0.5),
    "claude-3-5-haiku": Price(input=0.8, output=4.0, cache_read=0.08, cache_write=1.0),
    "claude-haiku-4-5": Price(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25),
    "claude-3-7-sonnet": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75),
    "claude-sonnet-4": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75),
    "claude-opus-4": Price(input=15.0, output=75.0, cache_read=1.5, cache_write=18.75),
}
DEFAULT_PRICE = Price(input=1.0, output=4.0)
FREE = rates_from_price(Price(input=0.0, output=0.0))


class PriceBook:
    """Rates per model: config over built-in defaults, longest prefix wins.

    A `default` entry in the config replaces the rate for unknown models. Models served by
    a `free` provider (the embedded model costs nothing to run) are priced at zero unless
    the config names them; an `unbilled` provider's (`bill_usage: false`) always are.
    Usage is recorded either way.
    """

    def __init__(
        self,
        configured: dict[str, Price],
        default: Price = DEFAULT_PRICE,
        free: frozenset[str] = frozenset(),
        unbilled: frozenset[str] = frozenset(),
    ) -> None:
        self._configured = tuple(sorted((k for k in configured if k != "default"), key=len))
        self._free = free
        self._unbilled = unbilled
        merged = {**BUILT_IN, **{k: v for k, v in configured.items() if k != "default"}}
        self._rates = {model: rates_from_price(price) for model, price in merged.items()}
        # Longest prefix first so the most specific entry wins.
        self._order = sorted(self._rates, key=len, reverse=True)
        self._default = rates_from_price(configured.get("default", default))

    def rates_for(self, model: str, provider: str | None = None) -> Rates:
        if provider in self._unbilled:
            return FREE
        if provider in self._free and not any(model.startswith(p) for p in self._configured):
            return FREE
        for prefix in self._order:
            if model.startswith(prefix):
                return self._rates[prefix]
        return self._default


def cost(usage: Usage, rates: Rates) -> int:
    """Credits for one model call, rounded up to a whole credit.

    Cached tokens are part of `input_tokens`; they are billed at their cache rate
    and removed from the tokens billed at the input rate, so nothing is charged twice.
    """
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    plain_input = max(0, usage.input_tokens - cached)
    micro = (
        plain_input * rates.input
        + usage.cache_read_tokens * rates.cache_read
        + usage.cache_write_tokens * rates.cache_write
        + usage.output_tokens * rates.output
    )
    return -(-micro // 1_000_000)
