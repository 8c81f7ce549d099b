#!/usr/bin/env python3
"""anon.py PORT ROOT read|write: what an anonymous session may do."""
import ftplib, io, os, sys

port, root, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def check(what, cond):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)

def denied(fn, *a):
    try:
        fn(*a)
        return False
    except ftplib.error_perm as e:
        return str(e).startswith("550")

f = ftplib.FTP()
f.connect("127.0.0.1", port, timeout=20)
check("anonymous login", f.login().startswith("230"))
names = f.nlst()
check("can list", "hello.txt" in names)
got = bytearray()
f.retrbinary("RETR hello.txt", got.extend)
check("can read", bytes(got) == open(os.path.join(root, "hello.txt"), "rb").read())
if mode == "read":
    check("no STOR", denied(f.storbinary, "STOR new", io.BytesIO(b"x")))
    check("no APPE", denied(f.storbinary, "APPE hello.txt", io.BytesIO(b"x")))
    check("no MKD", denied(f.mkd, "d"))
    check("no DELE", denied(f.delete, "hello.txt"))
    check("no RNFR", denied(f.rename, "hello.txt", "x"))
    check("nothing written", sorted(os.listdir(root)) == sorted(names))
else:
    f.storbinary("STOR new", io.BytesIO(b"x"))
    check("STOR", open(os.path.join(root, "new"), "rb").read() == b"x")
f.quit()
