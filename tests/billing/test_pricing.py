"""Prices in exact integer credits, longest-prefix matching, cache rates, no double charge."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agenthost.billing.pricing import BUILT_IN, PriceBook, Rates, cost
from agenthost.billing.tokens import text_bound, text_estimate
from agenthost.events import Usage
from agenthost.settings import Price


def test_longest_configured_prefix_wins_over_shorter_ones() -> None:
    book = PriceBook(
        {"gpt-4o": Price(input=2, output=8), "gpt-4o-mini-2": Price(input=9, output=9)}
    )
    assert book.rates_for("gpt-4o-mini-2024-07-18").input == 9_000_000
    assert book.rates_for("gpt-4o-mini").input == round(BUILT_IN["gpt-4o-mini"].input * 1e6)
    assert book.rates_for("gpt-4o-2024-11-20").input == 2_000_000


def test_unknown_model_uses_the_configured_default() -> None:
    assert PriceBook({}).rates_for("some-local-model") == Rates(
        1_000_000, 4_000_000, 1_000_000, 1_000_000
    )
    book = PriceBook({"default": Price(input=0.5, output=1)})
    assert book.rates_for("some-local-model").output == 1_000_000
    # "default" is the fallback rate, not a prefix of model names
    assert book.rates_for("default-model").input == 500_000


def test_cache_prices_default_to_the_input_price() -> None:
    rates = PriceBook({"m": Price(input=0.3, output=1.2)}).rates_for("m")
    assert rates.cache_read == rates.cache_write == rates.input == 300_000


def test_fractional_prices_become_exact_integers() -> None:
    # 0.075 * 1e6 is 74999.99999999999 in binary floating point
    rates = PriceBook({"m": Price(input=0.075, output=0.6, cache_read=0.0075)}).rates_for("m")
    assert (rates.input, rates.output, rates.cache_read) == (75_000, 600_000, 7_500)


def test_cost_rounds_up_to_a_whole_credit_once_per_call() -> None:
    rates = Rates(input=150_000, output=600_000, cache_read=75_000, cache_write=150_000)
    # 7 * 0.15 + 3 * 0.6 = 2.85 credits -> 3
    assert cost(Usage(input_tokens=7, output_tokens=3), rates) == 3
    assert cost(Usage(), rates) == 0
    big = Usage(input_tokens=10_000_000, output_tokens=1_000_000)
    assert cost(big, rates) == 1_500_000 + 600_000


def test_openai_style_cached_tokens_are_not_charged_twice() -> None:
    # OpenAI: prompt_tokens=1000 includes cached_tokens=800
    rates = PriceBook({}).rates_for("gpt-4o-mini")
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=800)
    expected = 200 * rates.input + 800 * rates.cache_read + 100 * rates.output
    assert cost(usage, rates) == -(-expected // 1_000_000)
    assert cost(usage, rates) < cost(Usage(input_tokens=1000, output_tokens=100), rates)


def test_anthropic_style_cache_write_and_read_at_their_own_rates() -> None:
    # Our Anthropic mapping: input = input_tokens + cache_creation + cache_read
    rates = PriceBook({}).rates_for("claude-sonnet-4-5")
    assert (rates.input, rates.cache_read, rates.cache_write) == (3_000_000, 300_000, 3_750_000)
    usage = Usage(
        input_tokens=1000, cache_write_tokens=300, cache_read_tokens=500, output_tokens=40
    )
    micro = 200 * 3_000_000 + 300 * 3_750_000 + 500 * 300_000 + 40 * 15_000_000
    assert cost(usage, rates) == micro // 1_000_000 == 2475


def test_token_estimate_is_not_below_common_bpe_counts() -> None:
    # Reference counts from a byte-level BPE tokenizer (49k vocabulary)
    assert text_estimate("The quick brown fox jumps over the lazy dog.") >= 10
    assert text_estimate("12345678") >= 8
    assert text_estimate("机器学习") >= 8
    assert text_estimate("") == 0
    assert text_estimate(" ") == 0  # a single space before a word joins the word


def test_whitespace_is_never_free() -> None:
    # Runs of spaces, tabs and newlines, and non-ASCII spaces, cost tokens in every
    # tokenizer; the estimate once counted them as nothing.
    assert text_estimate(" " * 4000) >= 1000
    assert text_estimate("\n" * 400) >= 100
    assert text_estimate("\u00a0" * 1000) == 2000
    assert text_bound("hi" + "\u00a0" * 1000) == 2002


def test_bound_is_the_utf8_length_and_never_below_the_estimate() -> None:
    samples = [
        "hello world",
        "x = [1, 2, 3]\n\tprint(x)",
        "机器学习 🚀",
        "\u2003\t \r\n",
        "\x00\x01",
    ]
    for text in samples:
        assert text_bound(text) == len(text.encode())
        assert text_estimate(text) <= text_bound(text)


def test_estimate_follows_the_pre_tokenizer_rules_piece_by_piece() -> None:
    # abcde (2) fg (1), lone spaces free, "  \n" (1), 12 (2), ! (1), é (2 bytes)
    assert text_estimate("abcde fg  \n12 !é") == 9
    assert text_estimate("a\x00b\x7f") == 4  # control characters one each


@given(st.text())
def test_estimate_never_exceeds_the_bound(text: str) -> None:
    assert 0 <= text_estimate(text) <= text_bound(text)


def test_the_embedded_providers_models_are_free_unless_priced() -> None:
    book = PriceBook({"smollm2-priced": Price(input=1.0, output=2.0)}, free=frozenset({"local"}))
    free = book.rates_for("smollm2-135m-instruct", "local")
    assert (free.input, free.output, free.cache_read, free.cache_write) == (0, 0, 0, 0)
    usage = Usage(input_tokens=1_000, output_tokens=1_000)
    assert cost(usage, free) == 0
    assert book.rates_for("smollm2-priced", "local").output == 2_000_000  # the config names it
    assert book.rates_for("smollm2-135m-instruct", "openai").output > 0  # same name elsewhere
