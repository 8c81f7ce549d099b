#!/usr/bin/env python3
"""ftplib_table.py PORT USER PASSWORD ROOT [v6]: every call of ftplib's table
against the ftp handler (ROOT: its root on disk, to check what it wrote).
Prints one line per check; exits non-zero at the first failure."""
import ftplib, io, os, sys

port, user, password, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host = "::1" if len(sys.argv) > 5 and sys.argv[5] == "v6" else "127.0.0.1"

def check(what, cond):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)

ftp = ftplib.FTP()
ftp.connect(host, port, timeout=20)
ftp.login(user, password)
check("pwd", ftp.pwd() == "/")
ftp.mkd("t")
check("mkd", os.path.isdir(os.path.join(root, "t")))
ftp.cwd("t")
check("cwd", ftp.pwd() == "/t")
data = os.urandom(200000) + b"\r\n\n\r"
ftp.storbinary("STOR bin", io.BytesIO(data))
check("storbinary", open(os.path.join(root, "t", "bin"), "rb").read() == data)
got = bytearray()
ftp.retrbinary("RETR bin", got.extend)
check("retrbinary", bytes(got) == data)
check("size", ftp.size("bin") == len(data))
check("mdtm", ftp.sendcmd("MDTM bin").startswith("213 2"))
ftp.storlines("STOR text", io.BytesIO(b"line one\nline two\n"))
check("storlines", open(os.path.join(root, "t", "text"), "rb").read()
      == b"line one\nline two\n")
lines = []
ftp.retrlines("RETR text", lines.append)
check("retrlines", lines == ["line one", "line two"])
listing = []
ftp.dir(listing.append)
check("dir", any(l.endswith(" bin") and l.startswith("-") for l in listing)
      and len(listing) == 2)
check("nlst", sorted(ftp.nlst()) == ["bin", "text"])
facts = dict(ftp.mlsd())
check("mlsd", facts["bin"]["type"] == "file" and
      facts["bin"]["size"] == str(len(data)))
ftp.rename("text", "text2")
check("rename", os.path.exists(os.path.join(root, "t", "text2")))
ftp.delete("text2")
check("delete", not os.path.exists(os.path.join(root, "t", "text2")))
# resume: REST then RETR gives the tail
got = bytearray()
ftp.retrbinary("RETR bin", got.extend, rest=1000)
check("rest retr", bytes(got) == data[1000:])
# the jail: .. and absolute paths stay inside
ftp.cwd("../../../..")
check("cwd .. at the root", ftp.pwd() == "/")
try:
    ftp.retrbinary("RETR /../../etc/passwd", lambda b: None)
    check("no /etc/passwd", False)
except ftplib.error_perm:
    check("no /etc/passwd", True)
if os.path.islink(os.path.join(root, "evil")):
    try:
        got = bytearray()
        ftp.retrbinary("RETR evil", got.extend)
        check("symlink out resolves inside", b"root:" not in got)
    except ftplib.error_perm:
        check("symlink out refused", True)
try:
    ftp.sendcmd("CWD a\0b")
    check("NUL refused", False)
except ftplib.error_perm as e:
    check("NUL refused", str(e).startswith("501"))
except ValueError:
    check("NUL refused (by ftplib)", True)
ftp.cwd("/t")
ftp.delete("bin")
ftp.cwd("/")
ftp.rmd("t")
check("rmd", not os.path.exists(os.path.join(root, "t")))
check("quit", ftp.quit().startswith("221"))
