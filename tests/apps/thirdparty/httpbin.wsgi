# httpbin (https://github.com/psf/httpbin), the Flask HTTP request & response
# service, installed from PyPI (package "httpbin"). Served unchanged.
from httpbin import app as application  # noqa: F401
