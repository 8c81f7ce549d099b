#!/usr/bin/env python3
"""transfers.py PORT ROOT: large, resumed, aborted, vanished and concurrent
transfers against an ftp handler serving ROOT anonymously (write).  Exits
non-zero at the first failure."""
import ftplib, hashlib, io, os, socket, sys, threading, time

port, root = int(sys.argv[1]), sys.argv[2]
BIG = 100 << 20

def check(what, cond):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)

def login():
    f = ftplib.FTP()
    f.connect("127.0.0.1", port, timeout=60)
    f.login()
    return f

# 100 MiB up and down, byte for byte
blob = os.urandom(1 << 20) * 100
digest = hashlib.sha256(blob).hexdigest()
f = login()
f.storbinary("STOR big", io.BytesIO(blob), blocksize=1 << 20)
check("100 MiB STOR", os.path.getsize(os.path.join(root, "big")) == BIG and
      hashlib.sha256(open(os.path.join(root, "big"), "rb").read()).hexdigest()
      == digest)
h = hashlib.sha256()
n = [0]
def take(b):
    h.update(b)
    n[0] += len(b)
f.retrbinary("RETR big", take, blocksize=1 << 20)
check("100 MiB RETR", n[0] == BIG and h.hexdigest() == digest)

# REST + STOR resumes an upload
f.storbinary("STOR part", io.BytesIO(blob[:3000]))
f.storbinary("STOR part", io.BytesIO(blob[3000:10000]), rest=3000)
check("REST STOR resumes", open(os.path.join(root, "part"), "rb").read()
      == blob[:10000])

# ABOR during a RETR: 426 then 226, the session goes on
conn = f.transfercmd("RETR big")
conn.recv(65536)
conn.close()
resp = f.abort()
check("ABOR answered " + resp[:3], resp[:3] in ("426", "225", "226"))
if resp[:3] == "426":
    check("then 226", f.voidresp().startswith("2"))
check("session alive after ABOR", f.sendcmd("NOOP").startswith("200"))
f.quit()

# a client vanishing mid-upload: the partial file is kept as it is
f = login()
conn = f.transfercmd("STOR gone")
conn.sendall(blob[:500000])
conn.close()
f.sock.close()
deadline = time.time() + 10
while time.time() < deadline and os.path.getsize(os.path.join(root, "gone")) < 500000:
    time.sleep(0.05)
check("partial upload kept", open(os.path.join(root, "gone"), "rb").read()
      == blob[:500000])
# and mid-download
f = login()
conn = f.transfercmd("RETR big")
conn.recv(1000)
conn.close()
f.sock.close()

# 50 clients downloading at once
small = blob[:2 << 20]
f = login()
f.storbinary("STOR small", io.BytesIO(small))
f.quit()
ok = []
def one():
    try:
        g = login()
        got = bytearray()
        g.retrbinary("RETR small", got.extend)
        g.quit()
        ok.append(bytes(got) == small)
    except Exception as e:
        print("client:", e)
        ok.append(False)
ts = [threading.Thread(target=one) for _ in range(50)]
for t in ts:
    t.start()
for t in ts:
    t.join(120)
check("50 concurrent downloads", len(ok) == 50 and all(ok))
