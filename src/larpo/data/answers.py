"""Final answers of worked solutions (GSM8K): the number a solution ends with, compared numerically."""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def final_number(text: str) -> float | None:
    """The final numeric answer of a solution: the number after the last `####`, or else the last
    number in the text. Thousands separators are ignored; None when there is no number."""
    tail = text.rsplit("####", 1)[1] if "####" in text else text
    numbers = _NUMBER.findall(tail)
    if not numbers:
        return None
    try:
        return float(numbers[0 if "####" in text else -1].replace(",", ""))
    except ValueError:
        return None


def answers_match(response: str, reference: str) -> bool:
    """Numeric comparison of final answers, never a substring test: "12" does not match "120"."""
    a, b = final_number(response), final_number(reference)
    return a is not None and b is not None and math.isclose(a, b, rel_tol=0.0, abs_tol=1e-6)


# --- the sources ---------------------------------------------------------------------------------
