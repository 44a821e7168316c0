"""moto_server, with DynamoDB requests taken one at a time.

Real DynamoDB transactions are serializable; moto's threaded server checks a
TransactWriteItems' conditions and writes its items without a lock, so two
concurrent transactions on one key can both succeed (the idempotency and
account-hold tests then see two winners). Every other service stays
concurrent. Arguments as moto_server's: -H HOST -p PORT.
"""

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def serialize_dynamodb(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                # Consume the whole response inside the lock.
                chunks = list(app(environ, start_response))
            return chunks
        return app(environ, start_response)

    return wrapped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    # moto builds some URLs (SQS queues, presigned links) from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialize_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
