def default_cities() -> list[str]:
    return ["Tokyo", "Lima"]
