"""An activity whose entry point is not main."""

import shared


def to_upper(text: str) -> str:
    return shared.shout(text)
