"""No route in function.json: the host serves it at /api/Ping, any method."""


def main(req):
    return "pong"
