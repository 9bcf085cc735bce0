"""Requests through geo_ourcity.wsgi.application, the application gunicorn serves (Django's test client builds
its own request objects, so it can't show what the server does with a request Django can't even build)."""
import io
import wsgiref.util
from dataclasses import dataclass, field

from django.core.signals import request_finished, request_started
from django.db import close_old_connections


@dataclass
class WSGIResponse:
    status_code: int
    headers: dict = field(default_factory=dict)
    content: bytes = b""

    def __getitem__(self, name):
        return self.headers[name.lower()]


def wsgi_request(method, path, *, query="", body=b"", content_type=None, headers=None):
    from geo_ourcity.wsgi import application

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "testserver",
               "SERVER_PORT": "80", "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body))}
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    wsgiref.util.setup_testing_defaults(environ)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"] = int(status.split()[0])
        started["headers"] = {k.lower(): v for k, v in response_headers}

    # As Django's test client does: the test's transaction must survive the request's end.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = application(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return WSGIResponse(started["status"], started["headers"], content)
