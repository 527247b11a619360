# A WSGI script that takes 8 seconds to import (for a graceful restart
# without downtime: no request may wait for it).
import json
import os
import time

time.sleep(8)
IMPORTED = time.time()


def application(environ, start_response):
    body = json.dumps({"pid": os.getpid(), "imported": IMPORTED}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
