#!/usr/bin/env python3
"""A walkie-talkie client for sockserv's talk handler.

Receives first, then strictly alternates: one send of a typed line (no
newline), one recv(1024).  Typing "bye" (any case) sends it and ends.
"""
import os
import socket
import sys

BUFSIZE = 1024


def main():
    host = os.environ.get("SOCKSERV_HOST", "127.0.0.1")
    port = int(os.environ.get("SOCKSERV_PORT", "8000"))
    conn = socket.create_connection((host, port))
    while True:
        data = conn.recv(BUFSIZE)
        print("heard> " + data.decode("utf-8"))
        if not data:
            print("[the server closed the connection]")
        sys.stdout.write("say> ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            break
        text = line.rstrip("\n")
        conn.send(text.encode("utf-8"))
        if text.lower() == "bye":
            break
    conn.close()
    print("[over and out]")


if __name__ == "__main__":
    main()
