"""Code the functions share: imported as ..shared (relative) and as shared (absolute)."""


def shout(text: str) -> str:
    return text.upper()
