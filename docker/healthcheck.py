"""HEALTHCHECK of the rwsgi image: exit status 0 when the server answers.

Input: the path of the httpd.conf rwsgi-express generated (argv[1]). Its
first `Listen` directive (`PORT`, `HOST:PORT` or `[IPv6]:PORT`, as
rwsgi-express writes it) names the address; a wildcard or missing host is
checked on 127.0.0.1. A `HEAD /` request gets any HTTP status line: the
application decides what `/` answers, the check only asks that Apache and
the module serve. Output: exit status 0 (healthy) or 1 with the reason on
stderr (no Listen line, connection refused, timeout, not HTTP).
"""

import http.client
import sys


def listen_address(conf_path):
    """(host, port) of the first Listen directive of `conf_path`."""
    with open(conf_path, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if len(words) >= 2 and words[0] == "Listen":
                host, _, port = words[1].rpartition(":")
                host = host.strip("[]")
                if host in ("", "*", "0.0.0.0", "::"):
                    host = "127.0.0.1"
                return host, int(port)
    raise ValueError(f"no Listen directive in {conf_path}")


def main():
    try:
        host, port = listen_address(sys.argv[1])
        conn = http.client.HTTPConnection(host, port, timeout=4)
        conn.request("HEAD", "/")
        status = conn.getresponse().status
    except (OSError, ValueError, http.client.HTTPException) as e:
        print(f"healthcheck: {e}", file=sys.stderr)
        return 1
    print(f"healthcheck: HTTP {status} from {host}:{port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
