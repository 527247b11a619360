# A WSGI script that takes 3 seconds to import (for zero-downtime
# replacement: no request may wait for it).
import json
import os
import time

time.sleep(3)
IMPORTED = time.time()


def application(environ, start_response):
    body = json.dumps({"pid": os.getpid(), "imported": IMPORTED}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
