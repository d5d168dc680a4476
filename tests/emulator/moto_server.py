#!/usr/bin/env python3
"""moto's server on the listening socket the test runner hands down as `--listen-fd` (moto's own
command line takes only a port, which would have to be guessed free)."""

import argparse
import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

import listening  # beside this script


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen-fd", type=int, required=True)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, fd=args.listen_fd)
    return listening.serve_forever(server)


if __name__ == "__main__":
    sys.exit(main())
