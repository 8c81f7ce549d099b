#!/usr/bin/env python3
"""An echo client that opens a new TCP connection for every message.

For each typed line: connect, send it once (no newline), read one
recv(1024) and print its repr, close.  "BYE" is sent and ends the client
without waiting for an answer.
"""
import os
import socket
import sys


def main():
    host = os.environ.get("SOCKSERV_HOST", "127.0.0.1")
    port = int(os.environ.get("SOCKSERV_PORT", "8080"))
    for line in sys.stdin:
        text = line.rstrip("\n")
        conn = socket.create_connection((host, port))
        conn.send(text.encode("utf-8"))
        if text == "BYE":
            conn.close()
            break
        print("reply: %r" % (conn.recv(1024),))
        conn.close()


if __name__ == "__main__":
    main()
