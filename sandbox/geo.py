"""Locations as `[latitude, longitude]` and distances between them."""

from __future__ import annotations

import math
import re

from .errors import Unprocessable

EARTH_RADIUS_MILES = 3958.8
MILES_PER_KM = 0.621371
DEFAULT_RADIUS_MILES = 10.0
_RADIUS = re.compile(r"^(?P<amount>[0-9]+(?:\.[0-9]+)?)(?P<unit>mi|km)?$")


def check_location(location, field: str = "location") -> tuple[float, float]:
    """Validate ranges the schema cannot express per item: latitude +-90, longitude +-180."""
    if not isinstance(location, (list, tuple)) or len(location) != 2:
        raise Unprocessable(f"{field} must be [latitude, longitude]", field)
    lat, lon = (float(v) for v in location)
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise Unprocessable(f"{field} latitude {lat} is outside [-90, 90]", field)
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise Unprocessable(f"{field} longitude {lon} is outside [-180, 180]", field)
    return lat, lon


def same_place(a, b) -> bool:
    """Two locations are one place when equal to about 10 cm (6 decimals)."""
    return round(a[0], 6) == round(b[0], 6) and round(a[1], 6) == round(b[1], 6)


def miles_between(a, b) -> float:
    return miles_from(a)(b)


def miles_from(origin):
    """`miles_between(origin, b)` as a function of `b`, the origin's part computed once (a search
    measures thousands of slots from one point)."""
    lat1, lon1 = math.radians(origin[0]), math.radians(origin[1])
    cos_lat1 = math.cos(lat1)
    radians, sin, cos, asin, sqrt = math.radians, math.sin, math.cos, math.asin, math.sqrt

    def miles(b) -> float:
        lat2, lon2 = radians(b[0]), radians(b[1])
        h = sin((lat2 - lat1) / 2) ** 2 + cos_lat1 * cos(lat2) * sin((lon2 - lon1) / 2) ** 2
        return 2 * EARTH_RADIUS_MILES * asin(min(1.0, sqrt(h)))

    return miles


def parse_radius(value: str | None) -> float:
    """`25mi`, `40km` or a bare number of miles; default 10 miles."""
    if value is None:
        return DEFAULT_RADIUS_MILES
    match = _RADIUS.match(value.strip())
    if not match:
        raise Unprocessable(f"radius {value!r} must look like 10mi or 25km", "radius")
    amount = float(match["amount"])
    return amount * MILES_PER_KM if match["unit"] == "km" else amount
