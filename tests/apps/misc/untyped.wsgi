# A response the application leaves without a Content-Type: it must reach
# the client without one, whatever MIME type the script's file name has.
def application(environ, start_response):
    start_response("418 I'm a teapot", [("X-Untyped", "yes")])
    return [b"short and stout\n"]
