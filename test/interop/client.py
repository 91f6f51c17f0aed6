#!/usr/bin/env python3
"""An independent tcpchat client, written only from docs/PROTOCOL.md.

Python 3.11, standard library only: it carries its own MessagePack codec and the
4-byte big-endian length framing (PROTOCOL.md §1), a small client that matches
replies to requests by `id` and collects pushes (§2), and a scenario that
exercises the documented contract against a running server:

    python3 test/interop/client.py PORT [HOST]

Exit status 0 and a last line `interop: N checks passed` on success; on the
first failed check it prints what differed and exits 1. Every socket read has a
timeout and the whole run is bounded by an alarm, so it cannot hang.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import struct
import sys
import time
from typing import Any, Callable

# ---------------------------------------------------------------------------
# MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md), the
# subset a chat protocol needs: nil, bool, int (up to uint64 / int64), float
# (float64 out, float32/float64 in), str, bin, array, map. Ext types are
# rejected on decode: the protocol does not use them.
# ---------------------------------------------------------------------------


class MsgpackError(ValueError):
    pass


def packb(obj: Any) -> bytes:
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _pack(obj: Any, out: bytearray) -> None:
    if obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif isinstance(obj, int):
        _pack_int(obj, out)
    elif isinstance(obj, float):
        out.append(0xCB)
        out += struct.pack(">d", obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 0x100:
            out += bytes((0xD9, n))
        elif n < 0x10000:
            out.append(0xDA)
            out += struct.pack(">H", n)
        elif n < 0x100000000:
            out.append(0xDB)
            out += struct.pack(">I", n)
        else:
            raise MsgpackError("str too long")
        out += b
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        n = len(b)
        if n < 0x100:
            out += bytes((0xC4, n))
        elif n < 0x10000:
            out.append(0xC5)
            out += struct.pack(">H", n)
        elif n < 0x100000000:
            out.append(0xC6)
            out += struct.pack(">I", n)
        else:
            raise MsgpackError("bin too long")
        out += b
    elif isinstance(obj, (list, tuple)):
        n = len(obj)
        if n < 16:
            out.append(0x90 | n)
        elif n < 0x10000:
            out.append(0xDC)
            out += struct.pack(">H", n)
        else:
            out.append(0xDD)
            out += struct.pack(">I", n)
        for item in obj:
            _pack(item, out)
    elif isinstance(obj, dict):
        n = len(obj)
        if n < 16:
            out.append(0x80 | n)
        elif n < 0x10000:
            out.append(0xDE)
            out += struct.pack(">H", n)
        else:
            out.append(0xDF)
            out += struct.pack(">I", n)
        for k, v in obj.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise MsgpackError(f"cannot encode {type(obj).__name__}")


def _pack_int(n: int, out: bytearray) -> None:
    if 0 <= n < 0x80:
        out.append(n)
    elif -32 <= n < 0:
        out.append(n & 0xFF)
    elif n >= 0:
        if n < 0x100:
            out += bytes((0xCC, n))
        elif n < 0x10000:
            out.append(0xCD)
            out += struct.pack(">H", n)
        elif n < 0x100000000:
            out.append(0xCE)
            out += struct.pack(">I", n)
        elif n < 0x10000000000000000:
            out.append(0xCF)
            out += struct.pack(">Q", n)
        else:
            raise MsgpackError("int too large")
    else:
        if n >= -0x80:
            out.append(0xD0)
            out += struct.pack(">b", n)
        elif n >= -0x8000:
            out.append(0xD1)
            out += struct.pack(">h", n)
        elif n >= -0x80000000:
            out.append(0xD2)
            out += struct.pack(">i", n)
        elif n >= -0x8000000000000000:
            out.append(0xD3)
            out += struct.pack(">q", n)
        else:
            raise MsgpackError("int too small")


def unpackb(data: bytes) -> Any:
    """Decodes exactly one value; trailing bytes are an error."""
    obj, pos = _unpack(data, 0)
    if pos != len(data):
        raise MsgpackError(f"{len(data) - pos} trailing bytes")
    return obj


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    end = pos + n
    if end > len(data):
        raise MsgpackError("truncated")
    return data[pos:end], end


def _unpack(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise MsgpackError("truncated")
    b = data[pos]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0x80 <= b <= 0x8F:
        return _unpack_map(data, pos, b & 0x0F)
    if 0x90 <= b <= 0x9F:
        return _unpack_array(data, pos, b & 0x0F)
    if 0xA0 <= b <= 0xBF:
        raw, pos = _take(data, pos, b & 0x1F)
        return raw.decode("utf-8"), pos
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    if b in (0xC4, 0xC5, 0xC6):
        size = {0xC4: 1, 0xC5: 2, 0xC6: 4}[b]
        raw, pos = _take(data, pos, size)
        n = int.from_bytes(raw, "big")
        raw, pos = _take(data, pos, n)
        return bytes(raw), pos
    if b == 0xCA:
        raw, pos = _take(data, pos, 4)
        return struct.unpack(">f", raw)[0], pos
    if b == 0xCB:
        raw, pos = _take(data, pos, 8)
        return struct.unpack(">d", raw)[0], pos
    if b in (0xCC, 0xCD, 0xCE, 0xCF):
        size = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]
        raw, pos = _take(data, pos, size)
        return int.from_bytes(raw, "big", signed=False), pos
    if b in (0xD0, 0xD1, 0xD2, 0xD3):
        size = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[b]
        raw, pos = _take(data, pos, size)
        return int.from_bytes(raw, "big", signed=True), pos
    if b in (0xD9, 0xDA, 0xDB):
        size = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
        raw, pos = _take(data, pos, size)
        n = int.from_bytes(raw, "big")
        raw, pos = _take(data, pos, n)
        return raw.decode("utf-8"), pos
    if b in (0xDC, 0xDD):
        raw, pos = _take(data, pos, 2 if b == 0xDC else 4)
        return _unpack_array(data, pos, int.from_bytes(raw, "big"))
    if b in (0xDE, 0xDF):
        raw, pos = _take(data, pos, 2 if b == 0xDE else 4)
        return _unpack_map(data, pos, int.from_bytes(raw, "big"))
    raise MsgpackError(f"unsupported type byte 0x{b:02x}")


def _unpack_array(data: bytes, pos: int, n: int) -> tuple[list, int]:
    items = []
    for _ in range(n):
        v, pos = _unpack(data, pos)
        items.append(v)
    return items, pos


def _unpack_map(data: bytes, pos: int, n: int) -> tuple[dict, int]:
    m: dict = {}
    for _ in range(n):
        k, pos = _unpack(data, pos)
        v, pos = _unpack(data, pos)
        if isinstance(k, (list, dict)):
            raise MsgpackError("unhashable map key")
        m[k] = v
    return m, pos


def _self_test_codec() -> None:
    """Round trips covering every width the codec implements."""
    samples: list[Any] = [
        None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32,
        2**53 - 1, 2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1,
        -(2**63), 0.5, -1.25, 1e300, "", "a", "x" * 31, "x" * 32, "y" * 255, "z" * 256,
        "é🙂", "w" * 70000, b"", b"\x00\xff", bytes(300), bytes(70000), [], [1, [2, [3]]],
        list(range(20)), list(range(70000)), {}, {"a": 1, "b": {"c": [None, b"\x01"]}},
        {f"k{i}": i for i in range(20)},
    ]
    for s in samples:
        got = unpackb(packb(s))
        if got != s or type(got) is not type(s):
            raise AssertionError(f"codec round trip of {s!r:.60} gave {got!r:.60}")
    # Fixed encodings from the MessagePack spec.
    assert packb(2**64 - 1) == b"\xcf" + b"\xff" * 8
    assert packb(-1) == b"\xff"
    assert packb(1.0) == b"\xcb\x3f\xf0" + bytes(6)
    assert unpackb(b"\xca\x3f\xc0\x00\x00") == 1.5
    assert unpackb(b"\xd3" + b"\xff" * 8) == -1


# ---------------------------------------------------------------------------
# Framing and the client (PROTOCOL.md §1, §2).
# ---------------------------------------------------------------------------

DEFAULT_MAX_FRAME = 4194304
PUSH_TYPES = ("msg", "presence", "bye")
TIMEOUT = 5.0


class Closed(Exception):
    pass


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


class Client:
    """One TCP connection. Replies are matched by `id`; pushes are collected."""

    _ids = 0

    def __init__(self, port: int, host: str, label: str) -> None:
        self.label = label
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        self.buf = bytearray()
        self.pushes: list[dict] = []
        self.replies: dict[int, dict] = {}
        self.unnumbered: list[dict] = []  # replies without id (bad_frame, ...)
        self.raw_frames: list[bytes] = []  # every body received, for byte-level checks
        self.closed = False

    # -- wire ---------------------------------------------------------------

    def send_body(self, body: bytes) -> None:
        self.sock.sendall(frame(body))

    def send_obj(self, obj: dict) -> None:
        self.send_body(packb(obj))

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"{self.label}: timed out")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                raise Closed(f"{self.label}: connection closed by server")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        (n,) = struct.unpack(">I", self._recv_exact(4, deadline))
        if n > DEFAULT_MAX_FRAME + 1024:
            raise MsgpackError(f"{self.label}: frame of {n} bytes exceeds what a client must accept")
        body = self._recv_exact(n, deadline)
        self.raw_frames.append(body)
        return body

    def pump(self, timeout: float = TIMEOUT) -> dict:
        """Reads one frame and files it as a push or a reply."""
        m = unpackb(self.read_frame(timeout))
        if not isinstance(m, dict) or not isinstance(m.get("t"), str):
            raise MsgpackError(f"{self.label}: server sent a frame that is not a map with t: {m!r}")
        if m["t"] in PUSH_TYPES and "id" not in m:
            self.pushes.append(m)
        elif "id" in m:
            self.replies[m["id"]] = m
        else:
            self.unnumbered.append(m)
        return m

    # -- requests -----------------------------------------------------------

    def start(self, t: str, fields: dict | None = None) -> int:
        """Sends a request with a fresh id without waiting for its reply."""
        Client._ids += 1
        rid = Client._ids
        self.send_obj({"t": t, "id": rid, **(fields or {})})
        return rid

    def wait(self, rid: int, timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while rid not in self.replies:
            self.pump(max(0.0, deadline - time.monotonic()))
        return self.replies.pop(rid)

    def request(self, t: str, fields: dict | None = None) -> dict:
        return self.wait(self.start(t, fields))

    def wait_unnumbered(self, timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while not self.unnumbered:
            self.pump(max(0.0, deadline - time.monotonic()))
        return self.unnumbered.pop(0)

    def wait_push(self, pred: Callable[[dict], bool], timeout: float = TIMEOUT) -> dict:
        """Returns (and removes) the first collected push matching pred, reading until one arrives."""
        deadline = time.monotonic() + timeout
        while True:
            for i, p in enumerate(self.pushes):
                if pred(p):
                    return self.pushes.pop(i)
            self.pump(max(0.0, deadline - time.monotonic()))

    def drain(self) -> None:
        """A ping round trip: everything the server queued before the pong has been read."""
        r = self.request("ping")
        if r.get("t") != "pong":
            raise AssertionError(f"{self.label}: ping answered with {r!r}")

    def msg_pushes(self) -> list[dict]:
        return [p for p in self.pushes if p["t"] == "msg"]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# Checks.
# ---------------------------------------------------------------------------

passed = 0


class CheckFailed(Exception):
    pass


def upload_file(c: Client, data: bytes, chunk: int) -> str:
    """Uploads `data` (§3.9) in chunks of `chunk` bytes from the offset the server has; the upload's id."""
    r = expect_ok(c.request("upload", {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}), "upload")
    check(isinstance(r.get("upload"), str) and r.get("size") == len(data) and r.get("offset") == 0,
          "upload reply: {upload, offset 0, size}", r)
    off = r["offset"]
    done = False
    while off < len(data):
        rr = expect_ok(c.request("chunk", {"upload": r["upload"], "offset": off, "data": data[off:off + chunk]}), "chunk")
        check(rr.get("offset") == min(len(data), off + chunk), "chunk reply: the new offset", rr)
        off = rr["offset"]
        done = rr.get("done") is True
    check(done, "the last chunk's reply says done", r)
    return r["upload"]


def download_file(c: Client, mid: int, length: int | None = None) -> bytes:
    """The bytes of message `mid`'s file (§3.9), `length` bytes a request."""
    out = b""
    while True:
        fields = {"mid": mid, "offset": len(out)}
        if length is not None:
            fields["len"] = length
        r = expect_ok(c.request("download", fields), "download")
        check(r.get("mid") == mid and r.get("offset") == len(out) and isinstance(r.get("data"), bytes),
              "download reply: {mid, offset, size, data as bin}", {k: v for k, v in r.items() if k != "data"})
        out += r["data"]
        if not r["data"] or len(out) >= r["size"]:
            return out


def check(cond: bool, what: str, got: Any = None, expected: Any = None) -> None:
    global passed
    if not cond:
        detail = f"CHECK FAILED: {what}"
        if got is not None or expected is not None:
            detail += f"\n  expected: {_short(expected)}\n  got:      {_short(got)}"
        raise CheckFailed(detail)
    passed += 1


def eq(got: Any, expected: Any, what: str) -> None:
    check(got == expected, what, got, expected)


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 2000 else s[:2000] + f"... ({len(s)} chars)"


def expect_ok(reply: dict, what: str) -> dict:
    check(reply.get("t") == "ok", f"{what}: ok reply", reply, {"t": "ok", "...": "..."})
    return reply


def expect_error(reply: dict, code: str, what: str, rid: int | None = None) -> dict:
    check(reply.get("t") == "error" and reply.get("code") == code, f"{what}: error {code}", reply,
          {"t": "error", "code": code, "msg": "..."})
    check(isinstance(reply.get("msg"), str), f"{what}: error has a string msg", reply.get("msg"), "a string")
    if rid is not None:
        eq(reply.get("id"), rid, f"{what}: error echoes id")
    return reply


def is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# The kinds of the entries that are changes to a group (§3.3, §3.5).
GROUP_KINDS = {"create", "join", "leave", "invite", "kick", "ban", "unban", "mute", "unmute", "role", "owner", "settings"}


def is_group_change(p: dict) -> bool:
    return p.get("t") == "msg" and p.get("kind") in GROUP_KINDS
NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,31}$")


# ---------------------------------------------------------------------------
# The scenario.
# ---------------------------------------------------------------------------


def scenario(port: int, host: str) -> None:
    opened: list[Client] = []

    def connect(label: str) -> Client:
        c = Client(port, host, label)
        opened.append(c)
        return c

    try:
        _run(connect)
    finally:
        for c in opened:
            c.close()


def _run(connect: Callable[[str], Client]) -> None:
    _self_test_codec()
    check(True, "MessagePack codec self-test")

    stamp = f"{os.getpid():x}{int(time.time() * 1000) % 10**9:x}"
    ua, ub = f"ia_{stamp}", f"ib_{stamp}"
    grp = f"ig_{stamp}"
    for n in (ua, ub, grp):
        check(bool(NAME_RE.match(n)), f"generated name {n!r} is valid per §2.1")
    pw_a, pw_b = "correct horse a", "correct horse b"

    # -- §1 example, byte for byte ---------------------------------------------
    raw = connect("raw")
    ping_bytes = bytes.fromhex("0000000c82a174a470696e67a2696401")
    eq(frame(packb({"t": "ping", "id": 1})), ping_bytes, "§1 example: our encoding of {t:ping, id:1}")
    raw.sock.sendall(ping_bytes)
    body = raw.read_frame()
    eq(frame(body), bytes.fromhex("0000000c82a174a470 6f6e67a2696401".replace(" ", "")),
       "§1 example: the server's pong bytes")
    eq(unpackb(body), {"t": "pong", "id": 1}, "§1 example: pong decodes")

    # A request without id is answered without id (§2).
    raw.send_obj({"t": "ping"})
    m = raw.pump()
    eq(m, {"t": "pong"}, "ping without id gets a pong without id")
    raw.unnumbered.clear()

    # -- §3.2 register -----------------------------------------------------------
    a1 = connect("a1")
    b1 = connect("b1")
    pong = a1.request("ping")
    eq(pong.get("t"), "pong", "ping reply type")

    r = expect_ok(a1.request("register", {"user": ua, "pass": pw_a}), "register a")
    eq(r.get("user"), ua, "register a: user echoed")
    r = expect_ok(b1.request("register", {"user": ub, "pass": pw_b}), "register b")
    eq(r.get("user"), ub, "register b: user echoed")
    expect_error(b1.request("register", {"user": ua, "pass": "whatever123"}), "conflict", "register taken name")
    expect_error(b1.request("register", {"user": "Upper" + stamp, "pass": "whatever123"}), "bad_request",
                 "register invalid name")
    expect_error(b1.request("register", {"user": "ix_" + stamp, "pass": "short"}), "bad_request",
                 "register short password")
    # register does not log in (§3.2): a logged-in-only request is refused.
    rid = b1.start("groups")
    expect_error(b1.wait(rid), "unauthorized", "register does not log in", rid)

    # -- login with password -------------------------------------------------------
    expect_error(a1.request("login", {"user": ua, "pass": "wrong password"}), "unauthorized", "login wrong password")
    expect_error(a1.request("login", {"user": "nobody_" + stamp, "pass": pw_a}), "unauthorized",
                 "login unknown user")
    r = expect_ok(a1.request("login", {"user": ua, "pass": pw_a}), "login a with password")
    eq(r.get("user"), ua, "login a: user")
    token_a = r.get("token")
    check(isinstance(token_a, str) and bool(TOKEN_RE.match(token_a)), "login a: token is 43 base64url chars",
          token_a, "43 chars of [A-Za-z0-9_-]")
    expect_error(a1.request("login", {"user": ua, "pass": pw_a}), "conflict", "login twice on one connection")

    r = expect_ok(b1.request("login", {"user": ub, "pass": pw_b}), "login b with password")
    token_b = r.get("token")
    check(isinstance(token_b, str) and bool(TOKEN_RE.match(token_b)), "login b: token format", token_b)
    check(token_a != token_b, "tokens differ between users")

    # -- token login on a second connection, pipelined (§2.2) ------------------------
    a2 = connect("a2")
    bad = a2.request("login", {"user": ub, "token": token_a})
    expect_error(bad, "unauthorized", "token of another user")
    r_login = a2.start("login", {"user": ua, "token": token_a})
    r_groups = a2.start("groups")  # sent without waiting for the login
    r = expect_ok(a2.wait(r_login), "login a2 with token")
    eq(r.get("token"), token_a, "token login returns the token it was given")
    eq(r.get("user"), ua, "token login: user")
    r = expect_ok(a2.wait(r_groups), "request pipelined behind login runs after it")
    eq(r.get("groups"), [], "fresh user has no groups")

    # -- §3.3 groups -------------------------------------------------------------------
    expect_error(a1.request("join", {"group": grp}), "not_found", "join of a group that does not exist")
    r = expect_ok(a1.request("create", {"group": grp}), "a creates group")
    mid_create, ts_create = r.get("mid"), r.get("ts")
    check(is_uint(mid_create) and mid_create > 0 and is_uint(ts_create), "create: ok {group, mid, ts}", r)
    eq({k: v for k, v in r.items() if k not in ("t", "id")}, {"group": grp, "mid": mid_create, "ts": ts_create},
       "create: ok {group, mid, ts}")
    expect_error(b1.request("create", {"group": grp}), "conflict", "create of a taken name")
    r = expect_ok(b1.request("join", {"group": grp}), "b joins group")
    mid_join, ts_join = r.get("mid"), r.get("ts")
    check(is_uint(mid_join) and mid_join > mid_create, "join: the entry's mid, after the create's", mid_join)
    eq({k: v for k, v in r.items() if k not in ("t", "id")},
       {"group": grp, "owner": ua, "topic": "", "mid": mid_join, "ts": ts_join}, "join: ok {group, owner, topic, mid, ts}")
    r = expect_ok(b1.request("join", {"group": grp}), "joining again is not an error")
    eq({k: v for k, v in r.items() if k not in ("t", "id")}, {"group": grp, "owner": ua, "topic": ""},
       "re-join changes nothing: no mid, no ts")

    r = expect_ok(b1.request("groups"), "groups of b")
    eq(r.get("groups"), [{"group": grp, "owner": ua, "role": "member", "public": True, "topic": "", "description": ""}],
       "groups of b lists the group with owner, role and settings")
    eq(r.get("invites"), [], "groups of b: no invitations")

    r = expect_ok(a2.request("members", {"group": grp}), "members")
    eq(r.get("group"), grp, "members: group")
    members = r.get("members")
    check(isinstance(members, list), "members: list", members)
    eq(sorted((m.get("user"), m.get("online"), m.get("role")) for m in members),
       sorted([(ua, True, "owner"), (ub, True, "member")]), "members: both users, both online, with roles")
    expect_error(a1.request("members", {"group": "nogroup_" + stamp}), "not_found", "members of unknown group")

    # The create and b's join are entries of the group's log (§3.3): pushed to the members' connections
    # (§5.1), not to the one that made the change. a2 gets both, a1 b's join only.
    expected_create = {"t": "msg", "mid": mid_create, "ts": ts_create, "from": ua, "group": grp, "kind": "create",
                       "target": ua}
    expected_join = {"t": "msg", "mid": mid_join, "ts": ts_join, "from": ub, "group": grp, "kind": "join", "target": ub}
    eq(a2.wait_push(lambda p: is_group_change(p)), expected_create, "a2: the push of a1's create")
    for c in (a1, a2):
        eq(c.wait_push(lambda p: is_group_change(p)), expected_join, f"{c.label}: the push of b's join")
    b1.drain()
    check(not any(is_group_change(p) for p in b1.pushes), "the joining connection gets no push of its join", b1.pushes)

    # -- §3.4 send to the group, delivery §5.1 ----------------------------------------------
    for c in (a1, a2, b1):
        c.drain()
        c.pushes = [p for p in c.pushes if p["t"] != "presence"]  # presence is not what this checks
        eq([p for p in c.pushes if is_group_change(p)], [], f"{c.label}: no other change to the group")
    cid1 = f"py-{stamp}-1"
    r = expect_ok(a1.request("send", {"group": grp, "text": "hello from python", "cid": cid1}), "send to group")
    mid1, ts1 = r.get("mid"), r.get("ts")
    check(is_uint(mid1) and mid1 > 0, "send: mid is a positive uint", mid1)
    check(is_uint(ts1), "send: ts is a uint", ts1)
    check(ts1 > 2**32, "send: ts is ms since epoch (> 2^32)", ts1)
    check(abs(ts1 - time.time() * 1000) < 60_000, "send: ts close to now", ts1, int(time.time() * 1000))

    expected_push = {"t": "msg", "mid": mid1, "ts": ts1, "from": ua, "group": grp, "text": "hello from python",
                     "cid": cid1}
    pb = b1.wait_push(lambda p: p["t"] == "msg")
    eq(pb, expected_push, "other member gets msg push with same mid/ts")
    pa2 = a2.wait_push(lambda p: p["t"] == "msg")
    eq(pa2, expected_push, "sender's other connection gets the msg push")
    # §5.1 "Every recipient gets the same bytes".
    raw_b = [f for f in b1.raw_frames if unpackb(f).get("mid") == mid1 and unpackb(f).get("t") == "msg"]
    raw_a2 = [f for f in a2.raw_frames if unpackb(f).get("mid") == mid1 and unpackb(f).get("t") == "msg"]
    check(len(raw_b) == 1 and raw_b == raw_a2, "every recipient gets the same bytes")
    a1.drain()
    eq(a1.msg_pushes(), [], "the sending connection gets no msg push")

    # -- retry with the same cid -------------------------------------------------------------
    r = expect_ok(a1.request("send", {"group": grp, "text": "hello from python", "cid": cid1}), "retry same cid")
    eq((r.get("mid"), r.get("ts")), (mid1, ts1), "retry returns the original mid and ts")
    # Even with different content, a used cid stores nothing (§3.4).
    r = expect_ok(a2.request("send", {"group": grp, "text": "different text", "cid": cid1}),
                  "retry same cid from another device")
    eq((r.get("mid"), r.get("ts")), (mid1, ts1), "same cid from the user's other device: original mid/ts")
    cid2 = f"py-{stamp}-2"
    r = expect_ok(a1.request("send", {"group": grp, "text": "second", "cid": cid2}), "send second message")
    mid2 = r.get("mid")
    check(is_uint(mid2) and mid2 > mid1, "mids strictly increase", mid2, f"> {mid1}")
    for c in (b1, a2):
        p = c.wait_push(lambda p: p["t"] == "msg")
        eq(p.get("mid"), mid2, f"{c.label}: next msg push after the retries is the new message (no duplicate push)")
        c.drain()
        eq(c.msg_pushes(), [], f"{c.label}: no further msg pushes")

    # A message without cid has no cid key (§3.5).
    r = expect_ok(b1.request("send", {"group": grp, "text": "no cid"}), "send without cid")
    mid3 = r.get("mid")
    p = a1.wait_push(lambda p: p["t"] == "msg" and p.get("mid") == mid3)
    check("cid" not in p and p.get("from") == ub and p.get("text") == "no cid", "push of a message without cid",
          p, {"from": ub, "text": "no cid", "(no cid key)": True})
    a2.wait_push(lambda p: p["t"] == "msg" and p.get("mid") == mid3)
    b1.drain()
    eq(b1.msg_pushes(), [], "sender b1 (single connection) gets no push of its own message")

    # Two more group messages for paging, sent pipelined: replies matched by id.
    ids = [a2.start("send", {"group": grp, "text": f"page {i}", "cid": f"py-{stamp}-p{i}"}) for i in range(2)]
    page_mids = []
    for rid in ids:
        r = expect_ok(a2.wait(rid), "pipelined send")
        page_mids.append(r.get("mid"))
    check(page_mids[0] < page_mids[1], "pipelined sends: mids in send order", page_mids)
    for c in (a1, b1):
        for pm in page_mids:
            c.wait_push(lambda p, pm=pm: p["t"] == "msg" and p.get("mid") == pm)
    group_mids = [mid1, mid2, mid3, *page_mids]
    # The group's log: its create and b's join (§3.3), then the messages.
    group_log = [mid_create, mid_join, *group_mids]

    # -- direct message with a file (§3.9: uploaded in chunks, the message names the upload) -----
    blob = bytes(range(256)) * 40 + os.urandom(1000) + b"\x00\xc1\xff"
    blob_sha = hashlib.sha256(blob).hexdigest()
    up = upload_file(a1, blob, 4000)
    cid_dm = f"py-{stamp}-dm"
    r = expect_ok(a1.request("send", {"user": ub, "text": "a file for you", "cid": cid_dm,
                                      "file": {"upload": up, "name": "dump.bin", "type": "application/octet-stream"}}),
                  "direct message with file")
    mid_dm, ts_dm = r.get("mid"), r.get("ts")
    wire_file = {"name": "dump.bin", "type": "application/octet-stream", "size": len(blob), "sha256": blob_sha}
    expected_dm = {"t": "msg", "mid": mid_dm, "ts": ts_dm, "from": ua, "user": ub, "text": "a file for you",
                   "file": wire_file, "cid": cid_dm}
    p = b1.wait_push(lambda p: p["t"] == "msg" and p.get("mid") == mid_dm)
    eq(p, expected_dm, "addressee gets the direct message push: the file's name, type, size and sha256, no bytes")
    eq(download_file(b1, mid_dm, 3000), blob, "the addressee downloads the file byte-exact, in chunks")
    eq(download_file(a1, mid_dm), blob, "the sender downloads it too (len defaults to max_chunk)")
    r = expect_ok(b1.request("download", {"mid": mid_dm, "offset": len(blob)}), "download at the end")
    eq((r.get("offset"), r.get("size"), r.get("data")), (len(blob), len(blob), b""), "download at the end: no bytes")
    p = a2.wait_push(lambda p: p["t"] == "msg" and p.get("mid") == mid_dm)
    eq(p, expected_dm, "sender's other device gets the direct message push")
    a1.drain()
    eq(a1.msg_pushes(), [], "sending connection gets no push of its direct message")
    expect_error(a1.request("send", {"user": ub, "file": {"upload": up, "name": "again.bin", "type": ""}}), "not_found",
                 "an upload is used up by its send")

    # An upload resumed: upload again with the same size and sha256 gives the offset the server has;
    # a chunk at another offset is a conflict.
    part = os.urandom(10000)
    part_sha = hashlib.sha256(part).hexdigest()
    r = expect_ok(a1.request("upload", {"size": len(part), "sha256": part_sha}), "upload start")
    up2 = r.get("upload")
    expect_ok(a1.request("chunk", {"upload": up2, "offset": 0, "data": part[:6000]}), "first chunk")
    r = expect_ok(a2.request("upload", {"size": len(part), "sha256": part_sha.upper()}), "upload resumed from another device")
    eq((r.get("upload"), r.get("offset"), r.get("size")), (up2, 6000, len(part)), "resume: the same upload at the offset the server has")
    expect_error(a2.request("chunk", {"upload": up2, "offset": 5000, "data": part[5000:]}), "conflict", "chunk at a wrong offset")
    r = expect_ok(a2.request("chunk", {"upload": up2, "offset": 6000, "data": part[6000:]}), "last chunk")
    eq((r.get("offset"), r.get("done")), (len(part), True), "the last chunk: done, the hash checked")
    # A wrong hash: refused when the last byte is in, and the upload starts again at 0.
    bad = os.urandom(100)
    r = expect_ok(a1.request("upload", {"size": 100, "sha256": hashlib.sha256(b"other" * 20).hexdigest()}), "upload with a wrong hash")
    expect_error(a1.request("chunk", {"upload": r["upload"], "offset": 0, "data": bad}), "bad_request", "bytes whose sha256 is not the upload's")
    expect_error(b1.request("download", {"mid": mid_dm + 100000}), "not_found", "download of an unknown message")

    # File only, to self (a user may message themselves), empty type.
    r = expect_ok(a2.request("send", {"user": ua, "file": {"upload": up2, "name": "x", "type": ""}}), "file-only DM to self")
    mid_self = r.get("mid")
    p = a1.wait_push(lambda p: p["t"] == "msg" and p.get("mid") == mid_self)
    eq({k: p.get(k) for k in ("from", "user", "file")}, {"from": ua, "user": ua,
       "file": {"name": "x", "type": "", "size": len(part), "sha256": part_sha}}, "DM to self delivered to the other device")
    check("text" not in p, "file-only message has no text key", p)
    expect_error(b1.request("download", {"mid": mid_self}), "not_found", "a file only the parties of its conversation may download")

    # -- history with limit/before paging --------------------------------------------------------
    r = expect_ok(b1.request("history", {"group": grp, "limit": 2}), "history newest page")
    msgs = r.get("msgs")
    eq([m.get("mid") for m in msgs], group_mids[-2:], "history: newest 2 messages, oldest first")
    eq(r.get("more"), True, "history: more older messages")
    seen = list(msgs)
    pages = 1
    while r.get("more"):
        before = seen[0]["mid"]
        r = expect_ok(b1.request("history", {"group": grp, "limit": 2, "before": before}), "history page before")
        page = r.get("msgs")
        check(all(m["mid"] < before for m in page), "history before: all mids < before", page)
        seen = page + seen
        pages += 1
        check(pages <= 10, "history paging terminates")
    eq([m["mid"] for m in seen], group_log, "history pages together: every entry of the group, oldest first")
    eq(pages, 4, "history: 7 entries in pages of 2 is 4 pages")
    eq(seen[0], {"mid": mid_create, "ts": ts_create, "from": ua, "group": grp, "kind": "create", "target": ua},
       "history: the create entry (§3.3, §3.5)")
    eq(seen[1], {"mid": mid_join, "ts": ts_join, "from": ub, "group": grp, "kind": "join", "target": ub},
       "history: the join entry")
    first = seen[2]
    eq(first, {"mid": mid1, "ts": ts1, "from": ua, "group": grp, "text": "hello from python", "cid": cid1},
       "history message shape (§3.5)")
    r = expect_ok(b1.request("history", {"group": grp, "after": mid1, "limit": 2}), "history after")
    eq(([m["mid"] for m in r.get("msgs")], r.get("more")), (group_mids[1:3], True), "history after: oldest 2 after")
    r = expect_ok(b1.request("history", {"group": grp, "after": mid1, "before": page_mids[1]}), "history range")
    eq([m["mid"] for m in r.get("msgs")], group_mids[1:4], "history with both after and before: the range between")
    r = expect_ok(b1.request("history", {"group": grp, "limit": 0}), "history limit 0")
    eq([m["mid"] for m in r.get("msgs")], group_mids[-1:], "history limit 0 counts as 1")
    # nil is treated as absent (§2).
    r = expect_ok(b1.request("history", {"group": grp, "before": None, "after": None, "limit": None}),
                  "history with nil fields")
    eq(([m["mid"] for m in r.get("msgs")], r.get("more")), (group_log, False), "nil fields treated as absent")
    r = expect_ok(b1.request("history", {"user": ua}), "direct history")
    eq([m["mid"] for m in r.get("msgs")], [mid_dm], "direct history holds the DM")
    eq(r["msgs"][0].get("file"), wire_file, "history has the file's name, type, size and sha256, no bytes")

    # -- sync after 0 ---------------------------------------------------------------------------------
    synced: list[dict] = []
    after = 0
    rounds = 0
    while True:
        r = expect_ok(b1.request("sync", {"after": after, "limit": 4}), "sync")
        page = r.get("msgs")
        check(isinstance(page, list) and isinstance(r.get("more"), bool), "sync reply shape", r)
        synced += page
        rounds += 1
        check(rounds <= 10, "sync paging terminates")
        if not r["more"]:
            break
        check(len(page) > 0, "sync with more=true returns messages", r)
        after = page[-1]["mid"]
    mids_synced = [m["mid"] for m in synced]
    eq(mids_synced, sorted(group_log + [mid_dm]), "sync after 0 (b): every entry of b's conversations, oldest first")
    eq(rounds, 2, "sync: 8 entries in pages of 4 is 2 rounds")
    r = expect_ok(a1.request("sync", {"after": 0}), "sync a")
    eq([m["mid"] for m in r["msgs"]], sorted(group_log + [mid_dm, mid_self]), "sync after 0 (a) includes DM to self")
    r = expect_ok(a1.request("sync", {"after": mid_self}), "sync from the last mid")
    eq((r.get("msgs"), r.get("more")), ([], False), "sync after the last mid: nothing")

    # -- other documented errors when logged in ---------------------------------------------------------------
    expect_error(a1.request("send", {"group": "nogroup_" + stamp, "text": "x"}), "not_found", "send to unknown group")
    expect_error(a1.request("history", {"group": "nogroup_" + stamp}), "not_found", "history of unknown group")
    expect_error(a1.request("send", {"user": "nobody_" + stamp, "text": "x"}), "not_found", "send to unknown user")
    expect_error(a1.request("send", {"group": grp}), "bad_request", "send with neither text nor file")
    expect_error(a1.request("send", {"group": grp, "user": ub, "text": "x"}), "bad_request",
                 "send with both group and user")

    # -- error cases ---------------------------------------------------------------------------------------
    e = connect("e")
    rid = e.start("join", {"group": grp})
    expect_error(e.wait(rid), "unauthorized", "request before login", rid)
    rid = e.start("create", {"group": "new_" + stamp})
    expect_error(e.wait(rid), "unauthorized", "create before login", rid)
    rid = e.start("history", {"group": grp})
    expect_error(e.wait(rid), "unauthorized", "history before login", rid)
    rid = e.start("no_such_request")
    expect_error(e.wait(rid), "unknown_type", "unknown t", rid)
    # Wrong field types (logged in, so the failure can only be the type).
    rid = a1.start("join", {"group": 12345})
    expect_error(a1.wait(rid), "bad_request", "join with an int group", rid)
    rid = a1.start("history", {"group": grp, "limit": 1.5})
    expect_error(a1.wait(rid), "bad_request", "history with a float limit", rid)
    rid = a1.start("send", {"user": ub, "file": {"name": "f", "type": "", "data": b"inline bytes"}})
    expect_error(a1.wait(rid), "bad_request", "a file's bytes inside send (before §3.9)", rid)
    rid = a1.start("chunk", {"upload": "x", "offset": 0, "data": "not binary"})
    expect_error(a1.wait(rid), "bad_request", "chunk data as str instead of bin", rid)
    rid = a1.start("upload", {"size": 10, "sha256": "not a hash"})
    expect_error(a1.wait(rid), "bad_request", "upload with a malformed sha256", rid)
    rid = a1.start("sync", {"after": -1})
    expect_error(a1.wait(rid), "bad_request", "negative uint", rid)
    rid = e.start("login", {"user": ua})
    expect_error(e.wait(rid), "bad_request", "login with neither pass nor token", rid)
    # A frame that is a valid MessagePack value but not a map.
    e.send_body(packb([1, 2, 3]))
    r = e.wait_unnumbered()
    expect_error(r, "bad_frame", "array frame")
    check("id" not in r, "bad_frame reply has no id", r)
    e.send_body(packb("ping"))
    expect_error(e.wait_unnumbered(), "bad_frame", "str frame")
    e.send_body(b"\xc1")  # never used in MessagePack
    expect_error(e.wait_unnumbered(), "bad_frame", "invalid MessagePack body")
    e.send_body(packb({"t": "ping", "id": 1}) + b"\x00")  # two values
    expect_error(e.wait_unnumbered(), "bad_frame", "body with trailing bytes")
    e.send_obj({"id": 7})  # §4 does not say whether this reply echoes the id: accept either
    r = e.pump()
    check(r.get("t") == "error" and r.get("code") == "bad_request", "map without t: bad_request", r)
    check(r.get("id") in (None, 7), "map without t: reply id absent or echoed", r)
    e.replies.clear()
    e.unnumbered.clear()
    e.send_obj({"t": "ping", "id": "seven"})
    r = e.wait_unnumbered()
    expect_error(r, "bad_request", "non-uint id")
    check("id" not in r, "non-uint id: reply has no id", r)
    e.drain()
    check(not e.closed, "connection stays open after bad frames")
    eq(e.pushes, [], "no pushes to a logged-out connection")

    # -- logout and presence --------------------------------------------------------------------------------
    # A third device of a, with its own token (a password login issues a new one).
    a4 = connect("a4")
    r = expect_ok(a4.request("login", {"user": ua, "pass": pw_a}), "a logs in on a third device")
    token_a4 = r.get("token")
    check(token_a4 != token_a, "a password login issues a new token", token_a4)
    r = expect_ok(a4.request("logout"), "logout")
    eq({k: v for k, v in r.items() if k not in ("t", "id")}, {}, "logout: ok {}")
    rid = a4.start("groups")
    expect_error(a4.wait(rid), "unauthorized", "after logout the connection is logged out", rid)
    a4.drain()
    check(not a4.closed, "the connection stays open after logout")
    a5 = connect("a5")
    expect_error(a5.request("login", {"user": ua, "token": token_a4}), "unauthorized", "logged-out token is revoked")
    r = expect_ok(a5.request("login", {"user": ua, "token": token_a}), "other devices' tokens stay valid")
    # a5 is a's third concurrent connection: no presence for b (and b is not watched here anyway).
    # b goes offline by closing its only connection: a, sharing the group, is told.
    a1.drain()
    a1.pushes.clear()
    b1.close()
    p = a1.wait_push(lambda p: p["t"] == "presence")
    eq(p, {"t": "presence", "user": ub, "online": False}, "presence offline when last connection closes")
    r = expect_ok(a1.request("members", {"group": grp}), "members while b is away")
    eq(sorted((m.get("user"), m.get("online")) for m in r["members"]), sorted([(ua, True), (ub, False)]),
       "members: b offline after closing its only connection")
    b2 = connect("b2")
    expect_ok(b2.request("login", {"user": ub, "token": token_b}), "b logs in again by token")
    p = a1.wait_push(lambda p: p["t"] == "presence")
    eq(p, {"t": "presence", "user": ub, "online": True}, "presence online on first connection's login")
    r = expect_ok(b2.request("sync", {"after": mid_dm}), "b syncs after reconnect")
    eq(r.get("msgs"), [], "nothing new for b")

    # -- forbidden, leave, too_large ---------------------------------------------------------------
    grp2 = f"ih_{stamp}"
    r = expect_ok(b2.request("create", {"group": grp2}), "b creates a second group")
    eq(r.get("group"), grp2, "second group created")
    expect_error(a1.request("members", {"group": grp2}), "forbidden", "members of a group one is not in")
    expect_error(a1.request("send", {"group": grp2, "text": "x"}), "forbidden", "send to a group one is not in")
    expect_error(a1.request("history", {"group": grp2}), "forbidden", "history of a group one is not in")
    expect_error(a1.request("leave", {"group": grp2}), "not_found", "leave a group one is not in")
    r = expect_ok(b2.request("leave", {"group": grp2}), "leave")
    eq(r.get("group"), grp2, "leave: ok {group, mid, ts}")
    check(is_uint(r.get("mid")) and is_uint(r.get("ts")), "leave: the leave entry's mid and ts", r)
    expect_error(b2.request("members", {"group": grp2}), "forbidden", "the group remains after its last member left")
    r = expect_ok(b2.request("groups"), "groups after leave")
    eq(r.get("groups"), [{"group": grp, "owner": ua, "role": "member", "public": True, "topic": "", "description": ""}],
       "groups after leave")
    expect_error(b2.request("send", {"user": ua, "text": "x" * 65537}), "too_large", "text over --max-text")
    r = expect_ok(b2.request("send", {"user": ua, "text": "é" * 32768}), "text of exactly --max-text UTF-8 bytes")
    a1.wait_push(lambda p, m=r.get("mid"): p["t"] == "msg" and p.get("mid") == m)

    # A length header over --max-frame: error too_large, bye too_large, close (§1).
    big = connect("big")
    big.sock.sendall(struct.pack(">I", DEFAULT_MAX_FRAME + 1))
    r = big.pump()
    check(r.get("t") == "error" and r.get("code") == "too_large", "oversized frame header: error too_large", r)
    r = big.pump()
    eq(r, {"t": "bye", "reason": "too_large"}, "oversized frame header: then bye")
    try:
        extra = big.read_frame(timeout=2.0)
        check(False, "connection closed after bye too_large", unpackb(extra), "end of stream")
    except (Closed, ConnectionResetError):
        check(True, "connection closed after bye too_large")


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: client.py PORT [HOST]", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"

    def on_alarm(_sig: int, _frame: Any) -> None:
        raise TimeoutError("interop run exceeded 30 s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(30)
    try:
        scenario(port, host)
    except CheckFailed as e:
        print(str(e))
        print(f"interop: FAILED after {passed} checks passed")
        return 1
    except Exception as e:  # timeouts, closed connections, decoding errors
        print(f"ERROR: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
        print(f"interop: FAILED after {passed} checks passed")
        return 1
    finally:
        signal.alarm(0)
    print(f"interop: {passed} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
