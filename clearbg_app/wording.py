"""Numbers in sentences: "1 hour", "2 hours", "0.25 credit", "12.5 credits"."""

from __future__ import annotations


def plural(count: int | float | str, word: str, plural_word: str | None = None) -> str:
    """`count word`, with the plural unless the count is exactly one (fractions below one keep the
    singular: "0.25 credit", as the pricing says)."""
    value = float(count)
    singular = value == 1 or 0 < abs(value) < 1
    return f"{count} {word if singular else (plural_word or word + 's')}"
