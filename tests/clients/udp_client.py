#!/usr/bin/env python3
"""A UDP client: one datagram per typed line (no newline), one
recvfrom(1024) for its answer, printed with the sender's address.

By default it keeps one socket and stops after sending "BYE" (no answer is
awaited).  With --socket-per-message it opens a new socket for every
message and stops at the end of its input.
"""
import os
import socket
import sys


def exchange(sock, text, address):
    sock.sendto(text.encode("utf-8"), address)
    data, sender = sock.recvfrom(1024)
    print("reply: %r from %s" % (data, sender))


def main():
    fresh = "--socket-per-message" in sys.argv[1:]
    address = (os.environ.get("SOCKSERV_HOST", "127.0.0.1"),
               int(os.environ.get("SOCKSERV_PORT", "8080")))
    sock = None if fresh else socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for line in sys.stdin:
        text = line.rstrip("\n")
        if fresh:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one:
                exchange(one, text, address)
            continue
        if text == "BYE":
            sock.sendto(text.encode("utf-8"), address)
            break
        exchange(sock, text, address)
    if sock is not None:
        sock.close()


if __name__ == "__main__":
    main()
