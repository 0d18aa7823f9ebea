#!/usr/bin/env python3
"""imaplib_check.py: drive an IMAP server with Python's imaplib, as a real
client does, and check each answer.

usage: imaplib_check.py HOST PORT [--user U] [--password P] [--timeout S] [--debug]

The user and password default to $IMAP_USER and $IMAP_PASSWORD. The
account needs an INBOX and the special-use folders \\Drafts \\Sent \\Trash
\\Junk \\Archive (a new Cistern account has them). The checks make a folder
with a unique name, APPEND one message to INBOX, COPY and MOVE it there,
EXPUNGE it, SUBSCRIBE a name below the folder and UNSUBSCRIBE it, APPEND
a binary message to it as a literal8 (BINARY, RFC 3516) and FETCH its
BINARY[1], and delete the folder at the end. Two more folders, made and
deleted by their checks, hold the checks that need a second connection:
\\Recent (RFC 3501 §2.3.2) and keywords announced by FLAGS before use
(RFC 3501 §7.2.6). The account is left as it was found.

One line per check, then "imaplib: N passed, M failed" (and how many
were skipped). A failed check prints the last lines of the IMAP
transcript; a server that does not answer within --timeout seconds
(default 10) fails the check, and the next check starts on a new
connection. When a check that later ones build on fails (connecting,
LOGIN, CREATE, APPEND, finding the message), the rest is skipped. The exit
status is 1 when any check failed. --debug prints the whole transcript as
it happens (the password masked). Standard library only.
"""

import argparse
import imaplib
import os
import re
import sys
import time

SPECIAL_USE = ["\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive"]
TRANSCRIPT_TAIL = 40


class Failed(Exception):
    """A check failed; the message says what was expected and what came."""


class RecordingIMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 keeping a transcript of the lines it sends and reads,
    and in lines the server's lines in the order they came (imaplib files
    untagged responses by name, which loses it). A label (such as "B ")
    starts each transcript line of a second connection."""

    def __init__(self, host, port, transcript, timeout, echo=False, secret=None, label=""):
        self.transcript = transcript
        self.echo = echo
        self.secret = secret
        self.label = label
        self.lines = []
        self.transcript.append("-- %sconnect %s:%d" % (label, host, port))
        super().__init__(host, port, timeout=timeout)

    def _note(self, direction, data):
        text = data.decode("utf-8", "replace").rstrip("\r\n")
        if self.secret:
            text = text.replace(self.secret, "********")
        for line in text.split("\n") or [""]:
            entry = "%s%s %s" % (self.label, direction, line.rstrip("\r"))
            self.transcript.append(entry)
            if self.echo:
                print("  " + entry, file=sys.stderr)

    def send(self, data):
        self._note("C:", data)
        super().send(data)

    def readline(self):
        line = super().readline()
        self._note("S:", line)
        self.lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        return line

    def read(self, size):
        data = super().read(size)
        self._note("S:", data)
        return data


def decode(item):
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    return str(item)


def expect(cond, what):
    if not cond:
        raise Failed(what)


def ok(result, what):
    typ, data = result
    if typ != "OK":
        raise Failed("%s: got %s %s" % (what, typ, [decode(d) for d in data]))
    return data


def no(result, code, what):
    """Check a tagged NO carrying [code]; return its text."""
    typ, data = result
    text = " ".join(decode(d) for d in data if d is not None)
    if typ != "NO" or not text.startswith("[" + code + "]"):
        raise Failed("%s: want NO [%s], got %s %s" % (what, code, typ, text))
    return text


def pop_code(m, name):
    """Remove and return the data of response code or untagged response
    name (imaplib files both under the name), as strings."""
    data = m.untagged_responses.pop(name, [])
    return [decode(d) for d in data if d is not None]


def fetch_parts(data):
    """Split imaplib FETCH data into (metadata, literals) per message:
    metadata is the response text without literals, literals maps the
    item name before each literal to its bytes."""
    out = []
    cur = None
    for item in data:
        if isinstance(item, tuple):
            head, literal = decode(item[0]), item[1]
            m = re.match(r"(\d+) \(", head)
            if m:
                cur = {"seq": int(m.group(1)), "meta": head, "lit": {}}
                out.append(cur)
            else:
                cur["meta"] += " " + head
            name = re.search(r"(\S+(?: \([^)]*\)\])?) \{\d+\}$", head)
            cur["lit"][name.group(1) if name else head] = literal
        elif item is None:
            continue
        else:
            text = decode(item)
            m = re.match(r"(\d+) \(", text)
            if m:
                cur = {"seq": int(m.group(1)), "meta": text, "lit": {}}
                out.append(cur)
            elif cur is not None:
                cur["meta"] += text
    return out


def flags_of(meta):
    m = re.search(r"FLAGS \(([^)]*)\)", meta)
    return None if m is None else m.group(1).split()


def raw(m, what, fn, *args):
    """Run fn(*args), an imaplib command of m, check it is OK, and return
    its data and the server's lines it read, in order."""
    start = len(m.lines)
    data = ok(fn(*args), what)
    return data, m.lines[start:]


def recent_of(lines):
    """The count of the last "* n RECENT" in lines, None without one."""
    n = None
    for line in lines:
        r = re.match(r"\* (\d+) RECENT$", line)
        if r:
            n = int(r.group(1))
    return n


def announced(who, lines, known, want):
    """Follow the keywords the server told a session of (known: those of
    its last "* FLAGS", updated here) through lines, in order: fail on a
    FETCH carrying a keyword no FLAGS announced before it (RFC 3501
    §7.2.6, RFC 9051 §7.3.5), on a FLAGS that brings a keyword without a
    PERMANENTFLAGS listing it before that FETCH, and when no FETCH
    carries want (the check would see nothing)."""
    permanent = set()
    used = False
    for line in lines:
        f = re.match(r"\* FLAGS \(([^)]*)\)$", line)
        if f:
            known.clear()
            known.update(f.group(1).split())
            continue
        f = re.match(r"\* OK \[PERMANENTFLAGS \(([^)]*)\)\]", line)
        if f:
            permanent = set(f.group(1).split())
            continue
        if not re.match(r"\* \d+ FETCH ", line):
            continue
        flags = flags_of(line) or []
        for k in flags:
            if not k.startswith("\\") and k not in known:
                raise Failed("%s: %r uses %s before any * FLAGS announced it; the lines, in order: %s"
                             % (who, line, k, lines))
        if want in flags:
            used = True
            expect(want in permanent, "%s: %s announced without a PERMANENTFLAGS listing it before %r: %s"
                   % (who, want, line, lines))
    expect(used, "%s: no FETCH carries %s: %s" % (who, want, lines))


def uid_of(meta):
    m = re.search(r"UID (\d+)", meta)
    return None if m is None else int(m.group(1))


LIST_RE = re.compile(r'\((?P<attrs>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')


def parse_list(data):
    """LIST data as a list of (attributes, delimiter, name)."""
    out = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):  # name as a literal
            m = LIST_RE.match(decode(item[0]))
            if m:
                out.append((m.group("attrs").split(), m.group("delim").strip('"'), decode(item[1])))
            continue
        m = LIST_RE.match(decode(item))
        if not m:
            raise Failed("LIST: cannot parse %r" % decode(item))
        name = m.group("name")
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out.append((m.group("attrs").split(), m.group("delim").strip('"'), name))
    return out


class _Literal8:
    """Literal data for imaplib's _command, which sends it after the
    continuation without writing a {n} of its own (the callback form)."""

    def __init__(self, data):
        self.data = data

    def feed(self, _continuation):
        return self.data


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Checks:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.m = None
        self.transcript = []
        self.selected = None
        token = "%d-%d" % (int(time.time() * 1000), os.getpid())
        self.token = token
        self.subject = "imaplib check " + token
        self.text = ("This message was appended by imaplib_check.py.\r\n"
                     "Token " + token + ".\r\n")
        self.message = ("From: imaplib check <check@example.org>\r\n"
                        "To: " + args.user + " <" + args.user + "@example.org>\r\n"
                        "Subject: " + self.subject + "\r\n"
                        "Date: " + imaplib.Time2Internaldate(time.time()).strip('"') + "\r\n"
                        "Message-ID: <" + token + "@imaplib-check.example.org>\r\n"
                        "MIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=us-ascii\r\n"
                        "\r\n" + self.text).encode()
        self.delim = "."
        self.folder = None
        self.uid = None
        self.seq = None
        self.scratch_folders = []

    def run(self):
        # (name, check, whether the checks after it need it to pass)
        steps = [
            ("CAPABILITY: in the greeting, and the command", self.capability, True),
            ("LOGIN, with [CAPABILITY] in the tagged OK", self.login, True),
            ("LIST: INBOX and the special-use folders", self.list, False),
            ("CREATE a folder with a unique name", self.create, True),
            ("APPEND with flags, APPENDUID", self.append, True),
            ("APPEND to a missing folder: NO [TRYCREATE]", self.append_trycreate, False),
            ("Names not modified UTF-7: NO [NONEXISTENT], CREATE NO [CANNOT], LIST nothing", self.bad_names, False),
            ("LSUB / LIST RECURSIVEMATCH: an unsubscribed parent of a subscription", self.subscribed_parent, False),
            ("SELECT INBOX", self.select, True),
            ("SEARCH SUBJECT and UID SEARCH SUBJECT", self.search_subject, True),
            ("SEARCH UNSEEN, SEEN, FLAGGED, ALL", self.search_flags, False),
            ("SEARCH past the last message: OK with what exists; FETCH BAD", self.search_past_end, False),
            ("FETCH UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]", self.fetch_peek, False),
            ("FETCH BODY[TEXT] sets \\Seen", self.fetch_text, False),
            ("SEARCH SEEN, UNSEEN after \\Seen was set", self.search_seen, False),
            ("STORE +FLAGS / -FLAGS, untagged FETCH", self.store, False),
            ("COPY, COPYUID", self.copy, False),
            ("MOVE, COPYUID and EXPUNGE", self.move, False),
            ("EXPUNGE of a \\Deleted message", self.expunge, False),
            ("STATUS of the folder", self.status, False),
            ("APPEND a literal8 (BINARY), FETCH BINARY, BINARY.SIZE, BODY", self.binary_append, False),
            ("\\Recent in one session: SELECT takes, EXAMINE and STATUS look", self.recent, False),
            ("Keywords: * FLAGS announces a new keyword before a FETCH carries it", self.keywords, False),
            ("DELETE the folder", self.delete, False),
            ("LOGOUT", self.logout, False),
        ]
        for i, (name, fn, needed) in enumerate(steps):
            try:
                if self.m is None and fn != self.capability:
                    self.reconnect()
                fn()
            except (Failed, imaplib.IMAP4.error, OSError) as e:
                self.failed += 1
                if isinstance(e, TimeoutError):
                    e = "no answer within %gs (timed out)" % self.args.timeout
                print("FAIL %s: %s" % (name, e), flush=True)
                self.dump()
                if not isinstance(e, Failed):
                    self.disconnect()  # the connection is out of step
                if needed:
                    self.skipped = len(steps) - i - 1
                    break
                continue
            self.passed += 1
            print("ok   %s" % name, flush=True)
        for name in [self.folder] + self.scratch_folders:  # best effort, after a failure
            if name is None:
                continue
            try:
                if self.m is None:
                    self.reconnect()
                self.m.delete(quote(name))
            except (imaplib.IMAP4.error, OSError):
                pass
        self.disconnect()
        return self.failed == 0

    def connect(self):
        self.m = RecordingIMAP4(self.args.host, self.args.port, self.transcript, self.args.timeout,
                                echo=self.args.debug, secret=self.args.password)

    def reconnect(self):
        """A new connection after a failure, logged in, with the mailbox
        of the old one selected."""
        self.connect()
        ok(self.m.login(self.args.user, self.args.password), "LOGIN again")
        if self.selected is not None:
            ok(self.m.select(quote(self.selected)), "SELECT %s again" % self.selected)

    def second(self):
        """A second connection of the same user, logged in; its transcript
        lines start with "B "."""
        m = RecordingIMAP4(self.args.host, self.args.port, self.transcript, self.args.timeout,
                           echo=self.args.debug, secret=self.args.password, label="B ")
        try:
            ok(m.login(self.args.user, self.args.password), "B: LOGIN")
        except BaseException:
            m.shutdown()
            raise
        return m

    def scratch(self, suffix):
        """CREATE a folder of one check, deleted by drop (or at the end)."""
        name = "imaplib-check-%s-%s" % (self.token, suffix)
        ok(self.m.create(quote(name)), "CREATE " + name)
        self.scratch_folders.append(name)
        return name

    def drop(self, b, name):
        """After a two-connection check, passed or not: LOGOUT of the
        second connection, CLOSE of the first, DELETE of the folder."""
        if b is not None:
            try:
                b.logout()
            except (imaplib.IMAP4.error, OSError):
                b.shutdown()
        if self.m is None:
            return
        try:
            if self.m.state == "SELECTED":
                self.m.close()
            self.m.delete(quote(name))
            self.scratch_folders.remove(name)
        except (imaplib.IMAP4.error, OSError):
            pass  # run() tries again at the end

    def disconnect(self):
        if self.m is not None:
            try:
                self.m.shutdown()
            except OSError:
                pass
            self.m = None

    def dump(self):
        if self.args.debug:
            return
        tail = self.transcript[-TRANSCRIPT_TAIL:]
        print("last %d lines of the IMAP transcript:" % len(tail), file=sys.stderr)
        for line in tail:
            print("  " + line, file=sys.stderr)

    # The checks, in order.

    def capability(self):
        self.connect()
        welcome = decode(self.m.welcome)
        expect(welcome.startswith("* OK [CAPABILITY "),
               "greeting has no [CAPABILITY ...] code (imaplib then asks with a CAPABILITY command): %r" % welcome)
        greeted = tuple(welcome.split("]", 1)[0][len("* OK [CAPABILITY "):].upper().split())
        caps = self.m.capabilities  # imaplib asks with CAPABILITY too
        expect(set(greeted) == set(caps),
               "the greeting's capabilities %s differ from CAPABILITY's %s" % (greeted, caps))
        expect("IMAP4REV1" in caps, "IMAP4rev1 not in the capabilities %s" % (caps,))
        expect("LOGINDISABLED" not in caps, "LOGINDISABLED: this connection may not LOGIN")

    def login(self):
        pop_code(self.m, "CAPABILITY")
        ok(self.m.login(self.args.user, self.args.password), "LOGIN")
        caps = pop_code(self.m, "CAPABILITY")
        expect(caps, "no [CAPABILITY ...] in the tagged OK of LOGIN (CLIENTS.md)")
        names = caps[-1].upper().split()
        expect("IMAP4REV1" in names, "IMAP4rev1 not in the post-login capabilities %s" % names)
        for want in ("UIDPLUS", "MOVE"):
            expect(want in names, "%s not in the post-login capabilities %s (later checks need it)" % (want, names))

    def list(self):
        entries = parse_list(ok(self.m.list(), "LIST"))
        names = {n: (attrs, d) for attrs, d, n in entries}
        expect("INBOX" in names, "LIST: no INBOX among %s" % sorted(names))
        self.delim = names["INBOX"][1] or "."
        have = {a for attrs, _, _ in entries for a in attrs}
        missing = [s for s in SPECIAL_USE if s not in have]
        expect(not missing, "LIST: no folder has %s; got %s" % (missing, entries))

    def create(self):
        self.folder = "imaplib-check-" + self.token
        ok(self.m.create(quote(self.folder)), "CREATE " + self.folder)
        entries = parse_list(ok(self.m.list('""', quote(self.folder)), "LIST the new folder"))
        expect([n for _, _, n in entries] == [self.folder],
               "LIST %s after CREATE: got %s" % (self.folder, entries))

    def append(self):
        pop_code(self.m, "APPENDUID")
        ok(self.m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), self.message),
           "APPEND to INBOX")
        codes = pop_code(self.m, "APPENDUID")
        expect(codes, "APPEND: no [APPENDUID ...] in the tagged OK (UIDPLUS, RFC 4315)")
        parts = codes[-1].split()
        expect(len(parts) == 2 and all(p.isdigit() for p in parts), "APPENDUID: malformed %r" % codes[-1])
        self.uidvalidity, self.uid = int(parts[0]), int(parts[1])

    def append_trycreate(self):
        # RFC 9051 §6.3.12; Dovecot's words.
        missing = self.folder + self.delim + "missing"
        text = no(self.m.append(quote(missing), None, None, self.message), "TRYCREATE", "APPEND to " + missing)
        expect(text == "[TRYCREATE] Mailbox doesn't exist: " + missing, "APPEND to %s: %r" % (missing, text))
        # A name CREATE would refuse: creating it cannot help.
        no(self.m.append('"&Jjo"', None, None, self.message), "NONEXISTENT", "APPEND to &Jjo (not modified UTF-7)")
        entries = parse_list(ok(self.m.list('""', quote(missing)), "LIST " + missing))
        expect(entries == [], "APPEND to a missing folder made it: %s" % entries)

    def bad_names(self):
        # Syntactically valid astrings, not valid modified UTF-7 (RFC 3501
        # §5.1.3): no BAD, they name no mailbox.
        for name in ("&Jjo", "&AGE-", "!#$&'+,-.0"):
            for cmd, args in (("SELECT", ()), ("EXAMINE", ()), ("STATUS", ("(MESSAGES)",)),
                              ("DELETE", ()), ("SUBSCRIBE", ()), ("UNSUBSCRIBE", ())):
                text = no(self.m._simple_command(cmd, quote(name), *args), "NONEXISTENT", "%s %s" % (cmd, name))
                expect("not valid mUTF-7" in text, "%s %s: %r" % (cmd, name, text))
            no(self.m._simple_command("CREATE", quote(name)), "CANNOT", "CREATE " + name)
            no(self.m._simple_command("RENAME", quote(self.folder), quote(name)), "CANNOT",
               "RENAME %s %s" % (self.folder, name))
            entries = parse_list(ok(self.m.list('""', quote(name)), "LIST with the pattern " + name))
            expect(entries == [], "LIST %s: %s" % (name, entries))
        self.selected = None  # a failed SELECT leaves none

    def untagged(self, name, *args):
        """Run the command args; return the untagged responses name."""
        self.m.untagged_responses.pop(name, None)
        ok(self.m._simple_command(*args), " ".join(args))
        return [decode(d) for d in self.m.untagged_responses.pop(name, []) if d is not None]

    def subscribed_parent(self):
        # a.b.c subscribed, a.b not (no mailbox either): LSUB "" a.% gives
        # a.b \Noselect (RFC 3501 §6.3.9); LIST (SUBSCRIBED RECURSIVEMATCH)
        # gives it with CHILDINFO, not \Subscribed (RFC 5258 §3.5).
        d = self.delim
        child, parent = self.folder + d + "b" + d + "c", self.folder + d + "b"
        ok(self.m.subscribe(quote(child)), "SUBSCRIBE " + child)
        try:
            pattern = quote(self.folder + d + "%")
            got = self.untagged("LSUB", "LSUB", '""', pattern)
            want = ['(\\Noselect) "%s" %s' % (d, parent)]
            expect(got == want, "LSUB \"\" %s: got %s, want %s" % (pattern, got, want))
            got = self.untagged("LIST", "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', pattern)
            expect(len(got) == 1 and got[0].endswith(' %s ("CHILDINFO" ("SUBSCRIBED"))' % parent)
                   and "\\Subscribed" not in got[0],
                   "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %s: got %s" % (pattern, got))
            got = self.untagged("LIST", "LIST", "(SUBSCRIBED)", '""', pattern)
            expect(got == [], "LIST (SUBSCRIBED) \"\" %s: got %s, want nothing" % (pattern, got))
        finally:
            ok(self.m.unsubscribe(quote(child)), "UNSUBSCRIBE " + child)

    def select(self):
        for name in ("EXISTS", "UIDVALIDITY", "FLAGS", "PERMANENTFLAGS"):
            pop_code(self.m, name)
        data = ok(self.m.select("INBOX"), "SELECT INBOX")
        self.selected = "INBOX"
        exists = int(decode(data[-1]))
        expect(exists >= 1, "SELECT INBOX: EXISTS %d after an APPEND" % exists)
        uv = pop_code(self.m, "UIDVALIDITY")
        expect(uv and int(uv[-1]) == self.uidvalidity,
               "SELECT: UIDVALIDITY %s, APPENDUID said %d" % (uv, self.uidvalidity))
        expect(pop_code(self.m, "FLAGS"), "SELECT: no untagged FLAGS")
        expect(pop_code(self.m, "PERMANENTFLAGS"), "SELECT: no [PERMANENTFLAGS ...]")

    def search_seqs(self, *criteria, m=None):
        m = m or self.m
        data = ok(m.search(None, *criteria), "%sSEARCH %s" % (m.label, " ".join(criteria)))
        return [int(x) for x in decode(data[-1]).split()]

    def search_subject(self):
        found = self.search_seqs("SUBJECT", quote(self.token))
        expect(len(found) == 1, "SEARCH SUBJECT %s: want one message, got %s" % (self.token, found))
        self.seq = found[0]
        uids = ok(self.m.uid("SEARCH", "SUBJECT", quote(self.token)), "UID SEARCH SUBJECT")
        expect(decode(uids[-1]).split() == [str(self.uid)],
               "UID SEARCH SUBJECT: want UID %d (APPENDUID), got %r" % (self.uid, decode(uids[-1])))

    def search_flags(self):
        expect(self.seq in self.search_seqs("UNSEEN"), "SEARCH UNSEEN does not find the new message %d" % self.seq)
        expect(self.seq in self.search_seqs("FLAGGED"), "SEARCH FLAGGED does not find message %d (APPENDed with \\Flagged)" % self.seq)
        expect(self.seq not in self.search_seqs("SEEN"), "SEARCH SEEN finds the new message %d" % self.seq)
        every = self.search_seqs("ALL")
        expect(self.seq in every and every == sorted(every) and every[-1] == len(every),
               "SEARCH ALL: %s, want 1..n including %d" % (every, self.seq))

    def search_past_end(self):
        # Sequence numbers past the end name no message in SEARCH (OK,
        # as Dovecot), and "*" is the last one: "n+5:*" is n:n+5.
        n = self.search_seqs("ALL")[-1]
        expect(self.search_seqs(str(n + 1000)) == [], "SEARCH %d with %d messages" % (n + 1000, n))
        expect(self.search_seqs("%d:*" % (n + 5)) == [n], "SEARCH %d:* with %d messages: want [%d]" % (n + 5, n, n))
        got = self.untagged("ESEARCH", "SEARCH", "RETURN", "(MIN MAX COUNT)", str(n + 1000))
        expect(len(got) == 1 and got[0].endswith(") COUNT 0"),
               "SEARCH RETURN (MIN MAX COUNT) %d: got ESEARCH %s, want COUNT 0" % (n + 1000, got))
        got = self.untagged("ESEARCH", "SEARCH", "RETURN", "()", str(n + 1000))
        expect(len(got) == 1 and got[0].endswith(")"), "SEARCH RETURN () %d: got ESEARCH %s" % (n + 1000, got))
        uids = ok(self.m.uid("SEARCH", "UID", "%d:%d" % (self.uid + 1000, self.uid + 2000)), "UID SEARCH UID past the end")
        expect(decode(uids[-1]).split() == [], "UID SEARCH UID past the end: %r" % decode(uids[-1]))
        try:
            typ, data = self.m.fetch(str(n + 1000), "(FLAGS)")
        except imaplib.IMAP4.error:
            return  # BAD: imaplib raises
        raise Failed("FETCH %d with %d messages: want BAD, got %s %s" % (n + 1000, n, typ, data))

    def fetch_one(self, items):
        data = ok(self.m.fetch(str(self.seq), items), "FETCH %d %s" % (self.seq, items))
        parts = [p for p in fetch_parts(data) if p["seq"] == self.seq]
        expect(parts, "FETCH %s: no response for message %d: %r" % (items, self.seq, data))
        merged = {"meta": " ".join(p["meta"] for p in parts), "lit": {}}
        for p in parts:
            merged["lit"].update(p["lit"])
        return merged

    def fetch_peek(self):
        r = self.fetch_one("(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        expect(uid_of(r["meta"]) == self.uid, "FETCH: UID %s, want %d" % (uid_of(r["meta"]), self.uid))
        size = re.search(r"RFC822\.SIZE (\d+)", r["meta"])
        expect(size and int(size.group(1)) == len(self.message),
               "RFC822.SIZE %s, the APPENDed message has %d octets" % (size and size.group(1), len(self.message)))
        flags = flags_of(r["meta"])
        expect(flags is not None and "\\Flagged" in flags and "\\Seen" not in flags,
               "FLAGS %s: want \\Flagged, not \\Seen" % flags)
        hdr = [v for k, v in r["lit"].items() if "HEADER.FIELDS" in k.upper()]
        want = ("Subject: " + self.subject + "\r\n\r\n").encode()
        expect(hdr and hdr[0] == want, "BODY[HEADER.FIELDS (SUBJECT)]: got %r, want %r" % (hdr, want))
        again = self.fetch_one("(FLAGS)")
        expect("\\Seen" not in (flags_of(again["meta"]) or []), "BODY.PEEK set \\Seen: %s" % again["meta"])

    def fetch_text(self):
        r = self.fetch_one("(BODY[TEXT])")
        text = [v for k, v in r["lit"].items() if "TEXT" in k.upper()]
        expect(text and text[0] == self.text.encode(), "BODY[TEXT]: got %r, want %r" % (text, self.text))
        after = self.fetch_one("(FLAGS)")
        expect("\\Seen" in (flags_of(after["meta"]) or []), "FETCH BODY[TEXT] did not set \\Seen: %s" % after["meta"])

    def search_seen(self):
        expect(self.seq in self.search_seqs("SEEN"), "SEARCH SEEN does not find message %d after BODY[TEXT]" % self.seq)
        expect(self.seq not in self.search_seqs("UNSEEN"), "SEARCH UNSEEN finds message %d after BODY[TEXT]" % self.seq)

    def store_flags(self, op, flags):
        data = ok(self.m.store(str(self.seq), op, flags), "STORE %d %s %s" % (self.seq, op, flags))
        parts = [p for p in fetch_parts(data) if p["seq"] == self.seq]
        expect(parts, "STORE %s %s: no untagged FETCH for message %d: %r" % (op, flags, self.seq, data))
        got = flags_of(parts[-1]["meta"])
        expect(got is not None, "STORE %s: untagged FETCH without FLAGS: %s" % (op, parts[-1]["meta"]))
        return got

    def store(self):
        got = self.store_flags("+FLAGS", "(\\Answered $ImaplibCheck)")
        for want in ("\\Answered", "$ImaplibCheck", "\\Flagged", "\\Seen"):
            expect(want in got, "STORE +FLAGS: %s missing from the untagged FETCH FLAGS %s" % (want, got))
        got = self.store_flags("-FLAGS", "(\\Flagged)")
        expect("\\Flagged" not in got, "STORE -FLAGS (\\Flagged): still in %s" % got)
        for want in ("\\Answered", "$ImaplibCheck", "\\Seen"):
            expect(want in got, "STORE -FLAGS (\\Flagged) also removed %s: %s" % (want, got))

    def copy(self):
        pop_code(self.m, "COPYUID")
        ok(self.m.copy(str(self.seq), quote(self.folder)), "COPY to " + self.folder)
        codes = pop_code(self.m, "COPYUID")
        expect(codes, "COPY: no [COPYUID ...] (UIDPLUS, RFC 4315)")
        parts = codes[-1].split()
        expect(len(parts) == 3 and parts[1] == str(self.uid),
               "COPYUID %r: want the source UID %d" % (codes[-1], self.uid))

    def move(self):
        pop_code(self.m, "COPYUID")
        pop_code(self.m, "EXPUNGE")
        ok(self.m._simple_command("MOVE", str(self.seq), quote(self.folder)), "MOVE to " + self.folder)
        codes = pop_code(self.m, "COPYUID")
        expect(codes and codes[-1].split()[1:2] == [str(self.uid)],
               "MOVE: want an untagged OK [COPYUID v %d n], got %s (RFC 6851 §4.3)" % (self.uid, codes))
        gone = pop_code(self.m, "EXPUNGE")
        expect(gone == [str(self.seq)], "MOVE: want '* %d EXPUNGE', got %s" % (self.seq, gone))
        expect(self.search_seqs("SUBJECT", quote(self.token)) == [],
               "after MOVE the message is still in INBOX")

    def expunge(self):
        data = ok(self.m.select(quote(self.folder)), "SELECT " + self.folder)
        self.selected = self.folder
        expect(int(decode(data[-1])) == 2, "SELECT %s: EXISTS %s, want 2 (a COPY and a MOVE)" % (self.folder, decode(data[-1])))
        ok(self.m.store("1", "+FLAGS.SILENT", "(\\Deleted)"), "STORE 1 +FLAGS.SILENT (\\Deleted)")
        pop_code(self.m, "EXPUNGE")
        data = ok(self.m.expunge(), "EXPUNGE")
        gone = [decode(d) for d in data if d is not None]
        expect(gone == ["1"], "EXPUNGE: want '* 1 EXPUNGE', got %s" % gone)
        left = fetch_parts(ok(self.m.fetch("1:*", "(UID)"), "FETCH 1:* (UID) after EXPUNGE"))
        expect([p["seq"] for p in left] == [1], "after EXPUNGE: FETCH 1:* gave %s, want message 1 only" % left)
        ok(self.m.close(), "CLOSE")
        self.selected = None

    def status(self):
        data = ok(self.m.status(quote(self.folder), "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"), "STATUS " + self.folder)
        text = decode(data[-1])
        items = dict(re.findall(r"([A-Z]+) (\d+)", text.split("(", 1)[-1]))
        expect(items.get("MESSAGES") == "1", "STATUS MESSAGES %s, want 1: %r" % (items.get("MESSAGES"), text))
        expect(items.get("UNSEEN") == "0", "STATUS UNSEEN %s, want 0 (the message is \\Seen): %r" % (items.get("UNSEEN"), text))
        for k in ("UIDNEXT", "UIDVALIDITY"):
            expect(k in items, "STATUS: no %s in %r" % (k, text))
        expect(int(items["UIDNEXT"]) >= 3, "STATUS UIDNEXT %s after two messages arrived" % items["UIDNEXT"])

    def binary_append(self):
        # imaptest's append-binary: a part with Content-Transfer-Encoding
        # binary holding a NUL, 8-bit octets and bare LFs, sent as a
        # literal8 (RFC 3516 §4.4), which imaplib cannot send by itself:
        # its literal is fed through a callback, and the ~{n} written here.
        content = b"\x00-\xe4\n\r\n\n"
        msg = (b"From: imaplib check <check@example.org>\r\n"
               b"Subject: " + self.subject.encode() + b" binary\r\n"
               b"Mime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: binary\r\n\r\n" + content)
        pop_code(self.m, "APPENDUID")
        self.m.literal = _Literal8(msg).feed
        ok(self.m._command_complete("APPEND", self.m._command("APPEND", quote(self.folder), "~{%d}" % len(msg))),
           "APPEND ~{%d} to %s" % (len(msg), self.folder))
        codes = pop_code(self.m, "APPENDUID")
        expect(codes and len(codes[-1].split()) == 2, "APPEND literal8: no [APPENDUID ...]: %s" % codes)
        uid = codes[-1].split()[1]
        ok(self.m.select(quote(self.folder)), "SELECT " + self.folder)
        self.selected = self.folder
        try:
            self.binary_fetch(uid, content)
        finally:
            # Not left selected, whatever failed: DELETE comes next.
            try:
                self.m.close()
                self.selected = None
            except (imaplib.IMAP4.error, OSError):
                pass

    def binary_fetch(self, uid, content):
        data = ok(self.m.uid("FETCH", uid, "(BINARY.SIZE[1] BINARY.PEEK[1] BODY.PEEK[1] RFC822.SIZE BODY.PEEK[])"),
                  "UID FETCH %s BINARY" % uid)
        parts = fetch_parts(data)
        expect(len(parts) == 1, "UID FETCH %s: want one response, got %r" % (uid, data))
        meta, lits = parts[0]["meta"], parts[0]["lit"]

        def literal(name):
            # fetch_parts names a {n} literal by its item; a ~{n} one
            # keeps the text before it.
            found = [(k, v) for k, v in lits.items()
                     if k == name or re.search(r"(^|\s)" + re.escape(name) + r" ~\{\d+\}$", k)]
            expect(len(found) == 1, "no %s literal in %r" % (name, data))
            return found[0]

        size = re.search(r"BINARY\.SIZE\[1\] (\d+)", meta)
        expect(size and int(size.group(1)) == len(content),
               "BINARY.SIZE[1] %s, want %d (RFC 3516: the decoded size)" % (size and size.group(1), len(content)))
        head, got = literal("BINARY[1]")
        expect(got == content, "BINARY[1]: got %r, want the %r sent" % (got, content))
        expect("~{" in head, "BINARY[1] holds a NUL but is not a literal8: %r" % head)
        head, got = literal("BODY[1]")
        expect(b"\x00" not in got and "~{" not in head,
               "BODY[1] carries a NUL or is a literal8: %r %r (RFC 9051 §7.5.2)" % (head, got))
        head, body = literal("BODY[]")
        rsize = re.search(r"RFC822\.SIZE (\d+)", meta)
        expect(rsize and int(rsize.group(1)) == len(body),
               "RFC822.SIZE %s, BODY[] has %d octets" % (rsize and rsize.group(1), len(body)))

    def status_of(self, name, items):
        data = ok(self.m.status(quote(name), items), "STATUS %s %s" % (name, items))
        return {k: int(v) for k, v in re.findall(r"([A-Z]+) (\d+)", decode(data[-1]).split("(", 1)[-1])}

    def recent_seqs(self, m, n):
        """FETCH 1:* (FLAGS) on m, which has n messages: the sequence
        numbers FLAGS shows with \\Recent."""
        parts = fetch_parts(ok(m.fetch("1:*", "(FLAGS)"), "%sFETCH 1:* (FLAGS)" % m.label))
        seqs = [p["seq"] for p in parts]
        expect(seqs == list(range(1, n + 1)), "%sFETCH 1:* (FLAGS): messages %s, want 1..%d" % (m.label, seqs, n))
        return [p["seq"] for p in parts if "\\Recent" in (flags_of(p["meta"]) or [])]

    def recent(self):
        # RFC 3501 §2.3.2, §6.3.1, §6.3.2, §6.3.10, §6.4.4, §7.3.2: a
        # message is recent in the one session that first sees it after
        # it arrived; EXAMINE and STATUS look without taking. Who selects
        # first takes them, so the order below matters.
        a = self.m
        name = self.scratch("recent")
        # The first \Seen, so that NEW (RECENT UNSEEN) differs from RECENT.
        ok(a.append(quote(name), "(\\Seen)", None, self.message), "APPEND 1 to " + name)
        ok(a.append(quote(name), None, None, self.message), "APPEND 2 to " + name)
        b = None
        try:
            b = self.second()
            self.recent_sessions(a, b, name)
        finally:
            self.drop(b, name)

    def recent_sessions(self, a, b, name):
        st = self.status_of(name, "(MESSAGES RECENT)")
        expect(st.get("MESSAGES") == 2 and st.get("RECENT") == 2,
               "STATUS %s before any SELECT: %s, want MESSAGES 2 RECENT 2" % (name, st))

        _, lines = raw(b, "B: EXAMINE " + name, b.select, quote(name), True)
        expect(recent_of(lines) == 2, "B: EXAMINE %s: RECENT %s, want 2: %s" % (name, recent_of(lines), lines))
        got = self.recent_seqs(b, 2)
        expect(got == [1, 2], "B: after EXAMINE, \\Recent on %s, want 1 and 2" % got)
        st = self.status_of(name, "(RECENT)")
        expect(st.get("RECENT") == 2, "STATUS %s after B's EXAMINE: %s, want RECENT 2 (EXAMINE takes none)" % (name, st))

        _, lines = raw(a, "SELECT " + name, a.select, quote(name))
        expect(recent_of(lines) == 2, "SELECT %s, the first: RECENT %s, want 2: %s" % (name, recent_of(lines), lines))
        got = self.recent_seqs(a, 2)
        expect(got == [1, 2], "after the first SELECT, \\Recent on %s, want 1 and 2" % got)
        for crit, want in (("RECENT", [1, 2]), ("NEW", [2]), ("OLD", []), ("UNSEEN", [2])):
            got = self.search_seqs(crit, m=a)
            expect(got == want, "SEARCH %s: %s, want %s (message 1 is \\Seen)" % (crit, got, want))

        _, lines = raw(b, "B: SELECT " + name, b.select, quote(name))
        expect(recent_of(lines) == 0, "B: SELECT %s after A's: RECENT %s, want 0: %s" % (name, recent_of(lines), lines))
        got = self.recent_seqs(b, 2)
        expect(got == [], "B: after A took them, \\Recent on %s" % got)
        for crit, want in (("RECENT", []), ("NEW", []), ("OLD", [1, 2])):
            got = self.search_seqs(crit, m=b)
            expect(got == want, "B: SEARCH %s: %s, want %s" % (crit, got, want))

        # B not selected APPENDs: A, selected, is the first to see it.
        ok(b.close(), "B: CLOSE")
        ok(b.append(quote(name), None, None, self.message), "B: APPEND 3 to " + name)
        _, lines = raw(a, "NOOP", a.noop)
        expect("* 3 EXISTS" in lines and recent_of(lines) == 3,
               "NOOP after B's APPEND: want * 3 EXISTS and * 3 RECENT: %s" % lines)
        got = self.recent_seqs(a, 3)
        expect(got == [1, 2, 3], "after the NOOP, \\Recent on %s, want 1, 2 and 3" % got)
        _, lines = raw(b, "B: SELECT " + name, b.select, quote(name))
        expect(recent_of(lines) == 0, "B: SELECT %s after A took 3: RECENT %s, want 0: %s" % (name, recent_of(lines), lines))
        got = self.recent_seqs(b, 3)
        expect(got == [], "B: \\Recent on %s after A took them all" % got)

        # B selected APPENDs: it is told at once (RFC 3501 §6.3.11), so
        # the message is recent in B, and A's count stays 3.
        _, lines = raw(b, "B: APPEND 4 to " + name, b.append, quote(name), None, None, self.message)
        expect("* 4 EXISTS" in lines and recent_of(lines) == 1,
               "B: APPEND to the selected %s: want * 4 EXISTS and * 1 RECENT: %s" % (name, lines))
        _, lines = raw(a, "NOOP", a.noop)
        expect("* 4 EXISTS" in lines and recent_of(lines) in (None, 3),
               "NOOP after B's APPEND to its selected mailbox: want * 4 EXISTS, RECENT still 3: %s" % lines)
        got = self.recent_seqs(a, 4)
        expect(got == [1, 2, 3], "\\Recent on %s, want 1, 2 and 3 (4 is B's)" % got)
        got = self.recent_seqs(b, 4)
        expect(got == [4], "B: \\Recent on %s, want 4 only" % got)

        ok(a.close(), "CLOSE")
        st = self.status_of(name, "(MESSAGES RECENT)")
        expect(st.get("MESSAGES") == 4 and st.get("RECENT") == 0,
               "STATUS %s at the end: %s, want MESSAGES 4 RECENT 0" % (name, st))

    def keywords(self):
        # RFC 3501 §7.2.6, RFC 9051 §7.3.5: * FLAGS (and PERMANENTFLAGS)
        # tells a session of a new keyword before any response carries
        # it, whoever brought it in. imaplib files untagged responses by
        # name, so the order is read from the lines as they came.
        a = self.m
        name = self.scratch("keywords")
        kw = "$imaplib" + re.sub(r"\W", "", self.token)  # unique per run
        other, own, appended = kw + "Other", kw + "Own", kw + "Append"
        for i in (1, 2):
            ok(a.append(quote(name), None, None, self.message), "APPEND %d to %s" % (i, name))
        b = None
        try:
            b = self.second()
            self.keyword_sessions(a, b, name, other, own, appended)
        finally:
            self.drop(b, name)

    def keyword_sessions(self, a, b, name, other, own, appended):
        known_a, known_b = set(), set()
        for m, known in ((a, known_a), (b, known_b)):
            _, lines = raw(m, "%sSELECT %s" % (m.label, name), m.select, quote(name))
            f = [line for line in lines if line.startswith("* FLAGS (")]
            expect(f, "%sSELECT %s: no * FLAGS: %s" % (m.label, name, lines))
            known.update(flags_of(f[-1]))
            expect(not known & {other, own, appended}, "%sSELECT %s: FLAGS %s before any STORE" % (m.label, name, f))

        # A STOREs a keyword new to the mailbox: FLAGS first for both.
        _, lines = raw(a, "STORE 1 +FLAGS (%s)" % other, a.store, "1", "+FLAGS", "(%s)" % other)
        announced("STORE 1 +FLAGS (%s)" % other, lines, known_a, other)
        _, lines = raw(b, "B: NOOP", b.noop)
        announced("B: NOOP after A's STORE of %s" % other, lines, known_b, other)

        # Another new one: A's own STORE, then B hears of it.
        _, lines = raw(a, "STORE 2 +FLAGS (%s)" % own, a.store, "2", "+FLAGS", "(%s)" % own)
        announced("STORE 2 +FLAGS (%s)" % own, lines, known_a, own)
        _, lines = raw(b, "B: NOOP", b.noop)
        announced("B: NOOP after A's STORE of %s" % own, lines, known_b, own)

        # APPEND with a new keyword; each connection FETCHes its FLAGS.
        _, lines = raw(a, "APPEND (%s) to %s" % (appended, name), a.append, quote(name), "(%s)" % appended, None, self.message)
        _, more = raw(a, "FETCH 3 (FLAGS)", a.fetch, "3", "(FLAGS)")
        announced("APPEND (%s), FETCH 3 (FLAGS)" % appended, lines + more, known_a, appended)
        _, lines = raw(b, "B: NOOP", b.noop)
        _, more = raw(b, "B: FETCH 1:* (FLAGS)", b.fetch, "1:*", "(FLAGS)")
        announced("B: NOOP, FETCH 1:* (FLAGS) after A's APPEND (%s)" % appended, lines + more, known_b, appended)

    def delete(self):
        ok(self.m.delete(quote(self.folder)), "DELETE " + self.folder)
        entries = parse_list(ok(self.m.list('""', quote(self.folder)), "LIST after DELETE"))
        expect(entries == [], "LIST %s after DELETE: %s" % (self.folder, entries))
        self.folder = None

    def logout(self):
        m, self.m = self.m, None
        typ, data = m.logout()
        expect(typ == "BYE", "LOGOUT: want BYE, got %s %s" % (typ, data))


def main():
    p = argparse.ArgumentParser(description="Check an IMAP server with Python's imaplib.")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--user", default=os.environ.get("IMAP_USER"), help="default $IMAP_USER")
    p.add_argument("--password", default=os.environ.get("IMAP_PASSWORD"), help="default $IMAP_PASSWORD")
    p.add_argument("--timeout", type=float, default=10, help="seconds to wait for an answer (default 10)")
    p.add_argument("--debug", action="store_true", help="print the IMAP transcript")
    args = p.parse_args()
    if not args.user or not args.password:
        p.error("need --user and --password (or $IMAP_USER and $IMAP_PASSWORD)")

    checks = Checks(args)
    ok_all = checks.run()
    skipped = ", %d skipped" % checks.skipped if checks.skipped else ""
    print("imaplib: %d passed, %d failed%s" % (checks.passed, checks.failed, skipped))
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
