#!/usr/bin/env python3
"""tls_check.py: check an IMAP server's TLS with Python's ssl and imaplib,
as a real client does: certificate verification on (CERT_REQUIRED, the
host name checked), trusting only the certificate file given.

usage: tls_check.py --cafile CERT --tls HOST:PORT --plain HOST:PORT
                    [--name NAME ...] [--user U] [--password P] [--timeout S]

--tls is an implicit-TLS listener (port 993 style), reached on its host
and verified once for each --name (default: localhost and 127.0.0.1; each
must be a name of the certificate, and the address of the listener).
--plain is a plain listener on an address of this machine that is not a
loopback address, so that the server sees the client as it sees clients
of other machines; STARTTLS there is verified for the first --name.

The checks:
  tls <name>        IMAP4_SSL: the handshake verifies, TLS 1.2 or newer;
                    LOGIN, LIST (INBOX is there), LOGOUT
  tls untrusted     a context without CERT fails verification
  tls wrong name    a context with CERT, checking another name, fails
  plain refused     without TLS, CAPABILITY has LOGINDISABLED and
                    STARTTLS, not AUTH=PLAIN; LOGIN gets NO
  starttls          STARTTLS verifies; LOGINDISABLED is gone; LOGIN,
                    LIST, LOGOUT
  starttls untrusted  STARTTLS with a context without CERT fails
                    verification

The user and password default to $IMAP_USER and $IMAP_PASSWORD. One line
per check, then "tls: N passed, M failed"; the exit status is 1 when any
check failed. Standard library only.
"""

import argparse
import imaplib
import os
import socket
import ssl
import sys


class Failed(Exception):
    """A check failed; the message says what was expected and what came."""


def expect(cond, what):
    if not cond:
        raise Failed(what)


def hostport(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("want HOST:PORT, got %r" % text)
    return host.strip("[]"), int(port)


def verifying_context(cafile):
    """A client context that trusts cafile only, and checks names."""
    ctx = ssl.create_default_context(cafile=cafile)
    expect(ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname,
           "the context does not verify: %s, check_hostname %s" % (ctx.verify_mode, ctx.check_hostname))
    return ctx


def untrusting_context():
    """A verifying client context that does not trust the server's
    certificate: no CA at all, so that a system CA cannot stand in."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    expect(ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname, "PROTOCOL_TLS_CLIENT does not verify")
    return ctx


class NamedIMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 connected to addr:port but knowing the server as
    name: STARTTLS checks the certificate for name, as a client does that
    was told the server's name and reached it at one of its addresses."""

    def __init__(self, name, addr, port, timeout):
        self._addr = addr
        super().__init__(name, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self._addr, self.port), timeout)


def caps(m):
    typ, data = m.capability()
    expect(typ == "OK", "CAPABILITY: %s %s" % (typ, data))
    return data[-1].decode().upper().split()


def login_list_logout(m, args, what):
    typ, data = m.login(args.user, args.password)
    expect(typ == "OK", "%s: LOGIN: %s %s" % (what, typ, data))
    typ, data = m.list()
    expect(typ == "OK", "%s: LIST: %s %s" % (what, typ, data))
    names = [d.decode().rsplit(" ", 1)[-1].strip('"') for d in data if d]
    expect("INBOX" in names, "%s: LIST: no INBOX in %s" % (what, names))
    typ, data = m.logout()
    expect(typ == "BYE", "%s: LOGOUT: %s %s" % (what, typ, data))


def check_tls_version(sock, what):
    version = sock.version()
    expect(version in ("TLSv1.2", "TLSv1.3"), "%s: TLS version %s, want 1.2 or 1.3" % (what, version))


def close(m):
    try:
        m.shutdown()
    except OSError:
        pass


def expect_verify_failure(connect, what):
    try:
        m = connect()
    except ssl.SSLCertVerificationError:
        return
    close(m)
    raise Failed("%s: the handshake succeeded" % what)


def main():
    p = argparse.ArgumentParser(description="Check an IMAP server's TLS with Python's ssl and imaplib.")
    p.add_argument("--cafile", required=True, help="the server's certificate (PEM), the only one trusted")
    p.add_argument("--tls", type=hostport, required=True, help="implicit-TLS listener HOST:PORT")
    p.add_argument("--plain", type=hostport, required=True, help="plain listener on a non-loopback address, HOST:PORT")
    p.add_argument("--name", action="append", help="a name of the certificate (repeatable)")
    p.add_argument("--user", default=os.environ.get("IMAP_USER"), help="default $IMAP_USER")
    p.add_argument("--password", default=os.environ.get("IMAP_PASSWORD"), help="default $IMAP_PASSWORD")
    p.add_argument("--timeout", type=float, default=10, help="seconds to wait for an answer (default 10)")
    args = p.parse_args()
    if not args.user or not args.password:
        p.error("need --user and --password (or $IMAP_USER and $IMAP_PASSWORD)")
    names = args.name or ["localhost", "127.0.0.1"]
    tls_host, tls_port = args.tls
    plain_host, plain_port = args.plain

    def implicit(name, ctx):
        # The name is also the address: each names the listener's host.
        return imaplib.IMAP4_SSL(name, tls_port, ssl_context=ctx, timeout=args.timeout)

    def tls_named(name):
        def run():
            m = implicit(name, verifying_context(args.cafile))
            check_tls_version(m.sock, "tls " + name)
            c = caps(m)
            expect("AUTH=PLAIN" in c and "LOGINDISABLED" not in c and "STARTTLS" not in c,
                   "tls %s: capabilities %s, want AUTH=PLAIN, no LOGINDISABLED, no STARTTLS" % (name, c))
            login_list_logout(m, args, "tls " + name)
        return run

    def tls_untrusted():
        expect_verify_failure(lambda: implicit(names[0], untrusting_context()), "tls untrusted")

    def tls_wrong_name():
        ctx = verifying_context(args.cafile)
        expect_verify_failure(
            lambda: imaplib.IMAP4_SSL(tls_host, tls_port, ssl_context=_ServerName(ctx, "mail.example.org"), timeout=args.timeout),
            "tls wrong name")

    def plain_refused():
        m = imaplib.IMAP4(plain_host, plain_port, timeout=args.timeout)
        try:
            local = m.sock.getsockname()[0]
            expect(not local.startswith("127.") and local not in ("::1", "::ffff:127.0.0.1"),
                   "the client's address %s is a loopback address" % local)
            c = caps(m)
            expect("LOGINDISABLED" in c and "STARTTLS" in c and "AUTH=PLAIN" not in c,
                   "capabilities without TLS from %s: %s, want LOGINDISABLED and STARTTLS, no AUTH=PLAIN" % (local, c))
            try:
                typ, data = m.login(args.user, args.password)
            except imaplib.IMAP4.error as e:
                expect("PRIVACYREQUIRED" in str(e), "LOGIN without TLS refused, but not with [PRIVACYREQUIRED]: %s" % e)
            else:
                raise Failed("LOGIN without TLS from %s: %s %s, want NO" % (local, typ, data))
        finally:
            close(m)

    def starttls():
        m = NamedIMAP4(names[0], plain_host, plain_port, args.timeout)
        typ, data = m.starttls(ssl_context=verifying_context(args.cafile))
        expect(typ == "OK", "STARTTLS: %s %s" % (typ, data))
        check_tls_version(m.sock, "starttls")
        c = caps(m)
        expect("LOGINDISABLED" not in c and "AUTH=PLAIN" in c and "STARTTLS" not in c,
               "capabilities after STARTTLS: %s" % c)
        login_list_logout(m, args, "starttls")

    def starttls_untrusted():
        m = NamedIMAP4(names[0], plain_host, plain_port, args.timeout)
        try:
            m.starttls(ssl_context=untrusting_context())
        except ssl.SSLCertVerificationError:
            return
        finally:
            close(m)
        raise Failed("starttls untrusted: the handshake succeeded")

    checks = [("tls " + n, tls_named(n)) for n in names]
    checks += [("tls untrusted", tls_untrusted), ("tls wrong name", tls_wrong_name),
               ("plain refused", plain_refused), ("starttls", starttls),
               ("starttls untrusted", starttls_untrusted)]
    passed = failed = 0
    for name, run in checks:
        try:
            run()
        except (Failed, OSError, imaplib.IMAP4.error) as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
        else:
            passed += 1
            print("ok   %s" % name)
    print("tls: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


class _ServerName:
    """An SSLContext that verifies for another name than the host
    connected to: wrap_socket's server_hostname is replaced."""

    def __init__(self, ctx, name):
        self._ctx, self._name = ctx, name

    def wrap_socket(self, sock, server_hostname=None, **kw):
        return self._ctx.wrap_socket(sock, server_hostname=self._name, **kw)


if __name__ == "__main__":
    sys.exit(main())
