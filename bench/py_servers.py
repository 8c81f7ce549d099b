#!/usr/bin/env python3
"""py_servers.py: Python's socketserver echo servers, the peers of the benchmark.

Usage: py_servers.py KIND [PORT]
KIND: tcp (TCPServer), threading-tcp (ThreadingTCPServer), forking-tcp
(ForkingTCPServer), udp (UDPServer), threading-udp (ThreadingUDPServer).
Binds 127.0.0.1:PORT (default 0 = any), prints the port on stdout and serves
until killed.  request_queue_size is 128, as sockserv's default; everything
else keeps Python's defaults (max_children = 40 for forking, and so on).
"""
import socketserver
import sys


class StreamEcho(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sock.sendall(data)
        except ConnectionError:     # a client that leaves mid-echo
            pass


class DgramEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


KINDS = {
    "tcp": (socketserver.TCPServer, StreamEcho),
    "threading-tcp": (socketserver.ThreadingTCPServer, StreamEcho),
    "forking-tcp": (socketserver.ForkingTCPServer, StreamEcho),
    "udp": (socketserver.UDPServer, DgramEcho),
    "threading-udp": (socketserver.ThreadingUDPServer, DgramEcho),
}


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in KINDS:
        sys.exit("usage: py_servers.py %s [PORT]" % "|".join(KINDS))
    base, handler = KINDS[sys.argv[1]]
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 0

    class Server(base):
        request_queue_size = 128
        allow_reuse_address = True

    with Server(("127.0.0.1", port), handler) as server:
        print(server.server_address[1], flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
