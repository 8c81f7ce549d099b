#!/usr/bin/env python3
"""A chat-room client with two threads, as a chat user runs it.

One thread sends every typed line as one send() without its newline (the
first answers the nickname prompt; "NICK:text" is a private message); the
other prints every recv(1024) as it comes, while the first waits for
input.  It does not stop when its input ends: it keeps printing what the
room says until the server closes the connection.
"""
import os
import socket
import sys
import threading


def send_lines(conn):
    for line in sys.stdin:
        conn.send(line.rstrip("\n").encode("utf-8"))


def print_received(conn):
    while True:
        data = conn.recv(1024)
        if not data:
            print("chat: the server closed the connection")
            return
        print("chat> " + data.decode("utf-8"))


def main():
    host = os.environ.get("SOCKSERV_HOST", "127.0.0.1")
    port = int(os.environ.get("SOCKSERV_PORT", "25666"))
    conn = socket.create_connection((host, port))
    sender = threading.Thread(target=send_lines, args=(conn,), daemon=True)
    receiver = threading.Thread(target=print_received, args=(conn,))
    sender.start()
    receiver.start()
    receiver.join()


if __name__ == "__main__":
    main()
