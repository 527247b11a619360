"""Application of the telemetry tests: /slow takes about 0.8 s."""
import time


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(0.8)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"telemetry-app " + environ.get("PATH_INFO", "").encode()]
