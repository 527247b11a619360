# A WSGI script whose import fails (for startup-timeout).
raise RuntimeError("this application cannot be imported")
