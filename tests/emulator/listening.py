"""A server on a socket the test runner bound and keeps: `--listen-fd 3` names it. The port is held
by the runner for the whole test, across restarts of this process, so nothing else can take it."""

import socket


def add_arguments(parser, port_flag="--listen-port"):
    """`--listen-fd` (a socket handed down, listening) or the port flag (the demo binds its own)."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--listen-fd", type=int)
    group.add_argument(port_flag, type=int, dest="listen_port")


def server(server_class, handler, args):
    if args.listen_fd is None:
        return server_class(("127.0.0.1", args.listen_port), handler)
    sock = socket.socket(fileno=args.listen_fd)
    built = server_class(sock.getsockname(), handler, bind_and_activate=False)
    built.socket.close()
    built.socket = sock
    built.server_address = sock.getsockname()
    return built


def serve_forever(server):
    """Serves until the process is stopped; Ctrl-C ends it quietly."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
