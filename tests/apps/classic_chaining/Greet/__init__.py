"""Greet one city, with the phrase kept beside it."""

from .phrases import GREETING


def main(city: str) -> str:
    return GREETING.format(city=city)
