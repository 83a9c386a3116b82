"""Objectives a campaign can maximise. Each is a rate per impression times an optional cost scale."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    event: str  # "conversions" or "clicks": the count in the numerator
    per_dollar: bool  # scaled by impressions per currency unit
    description: str


OBJECTIVES: dict[str, Objective] = {
    "conversions_per_dollar": Objective(
        "conversions_per_dollar", "conversions", True, "conversions per currency unit spent (1 / CPA)"
    ),
    "conversion_rate": Objective("conversion_rate", "conversions", False, "conversions per impression"),
    "click_rate": Objective("click_rate", "clicks", False, "destination clicks per impression (CTR)"),
}
