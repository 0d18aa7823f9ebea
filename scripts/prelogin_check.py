#!/usr/bin/env python3
"""prelogin_check.py HOST PORT: issue 11's attack against a running server.

It opens CONNS connections (default 3000) that never log in, PER_ADDR
(default 20) from each of many addresses of 127.0.0.0/8 (Linux routes
all of it to lo; nothing is added to it), waits a second for the server
to take them in, then connects from 127.0.0.1 and logs in as
IMAP_USER / IMAP_PASSWORD, and prints the time from connect to the
tagged answer of LOGIN. It exits 0 when the greeting and LOGIN are OK,
1 otherwise (a BYE greeting: the slots were full).
"""
import os
import resource
import socket
import sys
import time


def line(f):
    return f.readline().decode("utf-8", "replace").rstrip("\r\n")


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    conns = int(os.environ.get("CONNS", "3000"))
    per_addr = int(os.environ.get("PER_ADDR", "20"))
    user, password = os.environ["IMAP_USER"], os.environ["IMAP_PASSWORD"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, conns + 100)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    held = []
    failed = 0
    start = time.monotonic()
    for i in range(conns):
        n = i // per_addr
        src = "127.30.%d.%d" % (n >> 8, n & 0xFF)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((src, 0))
            s.settimeout(10)
            s.connect((host, port))
            held.append(s)
        except OSError:
            failed += 1
            s.close()
    print("opened %d connections that never log in from %d addresses in %.2f s (%d failed to connect)"
          % (len(held), (conns + per_addr - 1) // per_addr, time.monotonic() - start, failed))
    time.sleep(1)

    start = time.monotonic()
    c = socket.create_connection((host, port), timeout=20)
    f = c.makefile("rb")
    greeting = line(f)
    tagged = ""
    if greeting.startswith("* OK"):
        c.sendall(b'a1 LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
        while True:
            tagged = line(f)
            if tagged.startswith("a1 ") or not tagged:
                break
    took = time.monotonic() - start
    ok = greeting.startswith("* OK") and tagged.startswith("a1 OK")
    print("login with %d idle connections not logged in open: %.0f ms; greeting %r; LOGIN %r"
          % (len(held), took * 1000, greeting[:60], tagged[:60]))
    if ok:
        c.sendall(b"a2 LOGOUT\r\n")
    c.close()
    for s in held:
        s.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
