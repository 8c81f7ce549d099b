#!/usr/bin/env python3
"""exec_peer.py: starts Debian's tcpserver or xinetd running PROG ARGS... per
connection on a free 127.0.0.1 port, for bench/run's exec case.

    exec_peer.py tcpserver|xinetd PROG [ARG...]

Prints the port once the server accepts connections (it connects to it:
the readiness check, one connection served), then becomes `sleep
infinity`, the session leader bench/run stops (the server, its child, is
in the same session).
tcpserver runs with -R -H (no ident or DNS lookup) and its defaults
otherwise; xinetd with no connection-rate or instance limit (its defaults,
cps = 50 and a 10 s pause, would stop a benchmark) and no logging.
"""
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("tcpserver", "xinetd"):
        sys.exit(__doc__.split("\n\n")[1].strip())
    tool, prog = sys.argv[1], sys.argv[2:]
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="exec_peer.")
    if tool == "tcpserver":
        argv = ["tcpserver", "-R", "-H", "-l", "0", "127.0.0.1", str(port)]
        argv += prog
    else:
        conf = os.path.join(tmp, "xinetd.conf")
        with open(conf, "w") as f:
            f.write("defaults\n{\n}\n"
                    "service bench-exec\n{\n"
                    "    type = UNLISTED\n    port = %d\n"
                    "    socket_type = stream\n    protocol = tcp\n"
                    "    wait = no\n    user = %s\n    server = %s\n"
                    "%s"
                    "    bind = 127.0.0.1\n    instances = UNLIMITED\n"
                    "    per_source = UNLIMITED\n    cps = 1000000 1\n"
                    "    log_on_success =\n    log_on_failure =\n}\n"
                    % (port, pwd.getpwuid(os.getuid()).pw_name, prog[0],
                       "    server_args = %s\n" % " ".join(prog[1:])
                       if len(prog) > 1 else ""))
        argv = ["xinetd", "-dontfork", "-stayalive", "-f", conf, "-pidfile",
                os.path.join(tmp, "pid"), "-filelog",
                os.path.join(tmp, "log")]
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                s.recv(64)
            break
        except OSError:
            time.sleep(0.01)
    else:
        child.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit("exec_peer: %s did not start on port %d" % (tool, port))
    print(port, flush=True)
    # xinetd has read its file; the server is this process's child in the
    # session bench/run stops.  This process becomes a sleep, so that what
    # the benchmark counts of the session is the server's (not Python's)
    shutil.rmtree(tmp, ignore_errors=True)
    os.execvp("sleep", ["sleep", "infinity"])

if __name__ == "__main__":
    main()
