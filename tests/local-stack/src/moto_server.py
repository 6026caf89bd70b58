"""moto's standalone server with one request handled at a time.

moto's DynamoDB backend checks a ConditionExpression and then writes the item
without a lock, while `moto_server` serves every connection on its own thread.
Two conditional PutItems that arrive together can then both succeed, which
real DynamoDB never allows: a conditional write is atomic there. The
idempotency record depends on exactly that guarantee, so the tests serialise
request handling (connections are still accepted concurrently).

Arguments are moto_server's own (-H HOST -p PORT ...).
"""

import sys
import threading

from moto import server

_run_simple = server.run_simple
_lock = threading.Lock()


def _serialised(app):
    def handle(environ, start_response):
        with _lock:
            # Produce the whole body inside the lock: WSGI bodies are lazy.
            return [b"".join(app(environ, start_response))]

    return handle


def _run_simple_serialised(host, port, app, **options):
    return _run_simple(host, port, _serialised(app), **options)


server.run_simple = _run_simple_serialised

if __name__ == "__main__":
    server.main(sys.argv[1:])
