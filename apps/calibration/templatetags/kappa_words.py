"""`{{ kappa|landis_koch }}`: the Landis-Koch words beside every kappa on a page (issue 5)."""

from __future__ import annotations

import math

from django import template

from apps.calibration.stats import landis_koch as band

register = template.Library()


@register.filter
def landis_koch(value) -> str:
    """The band of a kappa ("moderate", ...); "undefined" for None, NaN or a non-number."""
    if value is None or value == "":
        return "undefined"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "undefined"
    return band(math.nan if math.isinf(number) else number)
