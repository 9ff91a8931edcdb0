"""Tests for devplane_shm.py (unittest only).

    python3 -m unittest clients/python/test_devplane_shm.py -v

The rings are made by RingWriter below, a small writer that follows the write
protocol of docs/shm-format.md byte by byte, written from the document rather
than from the reader so that the two check each other. Segments are named
dp-pytest-<pid>-<n> and removed after every test.
"""

import ctypes
import fcntl
import glob
import hashlib
import itertools
import json
import mmap
import os
import platform
import struct
import subprocess
import sys
import threading
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import devplane_shm as dp  # noqa: E402

try:
    import numpy
except ImportError:  # pragma: no cover - depends on the machine
    numpy = None

SCRIPT = os.path.join(HERE, "devplane_shm.py")
_names = itertools.count()


def new_name():
    return "dp-pytest-%d-%d" % (os.getpid(), next(_names))


def round_up(value, to):
    return (value + to - 1) // to * to


def dead_pid():
    """The pid of a process that has exited (and not been reused yet)."""
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            return child.pid
    raise unittest.SkipTest("could not find a dead pid")


def _futex_wake_number():
    machine = platform.machine().lower()
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        return {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98, "riscv64": 98}.get(machine)
    return 240 if machine.startswith(("arm", "aarch64", "i", "x86")) else None


class RingWriter:
    """A test-only writer: docs/shm-format.md, "Write protocol" and "Writer lifetime".

    Words the reader loads atomically (state, write_seq, futex, generation,
    flags) are stored with single 4- or 8-byte ctypes stores: struct.pack_into
    writes byte by byte, and a reader in another process could see a torn
    value.
    """

    MAGIC = b"DVPRING\0"

    def __init__(self, name, slot_count=4, slot_size=4096, content_type="application/octet-stream", generation=1):
        self.name = name
        self.path = "/dev/shm/" + name
        self.slot_count = slot_count
        self.slot_size = slot_size
        self.stride = round_up(4096 + slot_size, 4096)
        self.total = 4096 + slot_count * self.stride
        tmp = "%s.creating-%d" % (self.path, os.getpid())
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, self.total)
            self.mm = mmap.mmap(fd, self.total)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        self.fd = fd
        self._anchor = ctypes.c_char.from_buffer(self.mm)
        self.addr = ctypes.addressof(self._anchor)
        ct = content_type.encode()
        struct.pack_into(
            "<IIIIQQQIIQIIIIQI",
            self.mm,
            8,
            1,  # version
            4096,  # header_size
            slot_count,
            4096,  # slot_header_size
            slot_size,
            self.stride,
            self.total,
            os.getpid(),  # writer_pid
            generation,
            0,  # write_seq
            0,  # futex
            0,  # waiters
            0,  # flags
            32,  # reader_capacity
            time.time_ns(),
            len(ct),
        )
        self.mm[128 : 128 + len(ct)] = ct
        self.mm[0:8] = self.MAGIC  # last: the ring is complete
        os.link(tmp, self.path)
        os.unlink(tmp)

    # -- words --
    def u32(self, off, value=None):
        word = ctypes.c_uint32.from_address(self.addr + off)
        if value is not None:
            word.value = value
        return word.value

    def u64(self, off, value=None):
        word = ctypes.c_uint64.from_address(self.addr + off)
        if value is not None:
            word.value = value
        return word.value

    def poke(self, off, fmt, *values):
        struct.pack_into(fmt, self.mm, off, *values)

    @property
    def write_seq(self):
        return self.u64(56)

    @property
    def waiters(self):
        return self.u32(68)

    def entry(self, index):
        return struct.unpack_from("<IIQQQ", self.mm, 384 + 32 * index)

    def slot_off(self, seq):
        return 4096 + (seq % self.slot_count) * self.stride

    def _wake(self):
        self.u32(64, (self.u32(64) + 1) & 0xFFFFFFFF)
        if self.u32(68) != 0:
            nr = _futex_wake_number()
            if nr is not None:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.syscall.restype = ctypes.c_long
                libc.syscall(
                    ctypes.c_long(nr),
                    ctypes.c_void_p(self.addr + 64),
                    ctypes.c_long(1),  # FUTEX_WAKE, shared
                    ctypes.c_long(0x7FFFFFFF),
                    None,
                    None,
                    ctypes.c_long(0),
                )

    # -- protocol --
    def write(self, payload, meta=None, realtime_ns=None, monotonic_ns=None):
        if isinstance(meta, dict):
            meta = json.dumps(meta).encode()
        meta = meta or b""
        assert len(payload) <= self.slot_size and len(meta) <= 4032
        n = self.write_seq + 1
        off = self.slot_off(n)
        self.u64(off, 2 * n + 1)
        self.mm[off + 4096 : off + 4096 + len(payload)] = payload
        self.poke(
            off + 8,
            "<QQQIIQ",
            len(payload),
            time.time_ns() if realtime_ns is None else realtime_ns,
            time.monotonic_ns() if monotonic_ns is None else monotonic_ns,
            len(meta),
            0,
            n,
        )
        self.mm[off + 64 : off + 64 + len(meta)] = meta
        self.u64(off, 2 * n)
        self.u64(56, n)
        self._wake()
        return n

    def takeover(self, content_type=None):
        """A new writer keeping the segment (same geometry)."""
        self.u64(56, 0)
        for i in range(self.slot_count):
            self.u64(4096 + i * self.stride, 0)
        self.u32(48, os.getpid())
        if content_type is not None:
            ct = content_type.encode()
            self.mm[128:384] = b"\0" * 256
            self.mm[128 : 128 + len(ct)] = ct
            self.u32(88, len(ct))
        self.u32(52, self.u32(52) + 1)
        self._wake()

    def replace(self, slot_count, slot_size, content_type):
        """A new writer with another geometry: REPLACED, unlink, create anew.
        The old mapping stays open (call close_mapping()) so tests can look at it."""
        self.u32(72, self.u32(72) | 2)
        self._wake()
        os.unlink(self.path)
        return RingWriter(self.name, slot_count, slot_size, content_type, generation=self.u32(52) + 1)

    def close(self, unlink=True):
        if self.mm is None:
            return
        self.u32(72, self.u32(72) | 1)
        self.u32(48, 0)
        self._wake()
        if unlink:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.close_mapping()

    def close_mapping(self):
        if self.mm is not None:
            self._anchor = None
            self.mm.close()
            self.mm = None
            os.close(self.fd)


def _stress_writer(name, frames):
    """Runs in a child process: writes `frames` frames as fast as it can."""
    writer = RingWriter(name, slot_count=4, slot_size=65536)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    for n in range(1, frames + 1):
        writer.write(stress_payload(n), {"seq": n})
    sys.stdout.write("done\n")
    sys.stdout.flush()
    sys.stdin.readline()
    writer.close()


def stress_payload(n):
    length = 1 + (n * 7919) % 60000
    return (n.to_bytes(8, "little") * (length // 8 + 1))[:length]


class RingTest(unittest.TestCase):
    def setUp(self):
        self.names = []
        self.writers = []
        self.readers = []

    def tearDown(self):
        for reader in self.readers:
            reader.close()
        for writer in self.writers:
            writer.close_mapping()
        for name in self.names:
            for path in ["/dev/shm/" + name] + glob.glob("/dev/shm/%s.creating-*" % name):
                try:
                    if os.path.isdir(path) and not os.path.islink(path):
                        os.rmdir(path)
                    else:
                        os.unlink(path)
                except FileNotFoundError:
                    pass

    def name(self):
        name = new_name()
        self.names.append(name)
        return name

    def writer(self, name=None, **kw):
        writer = RingWriter(name or self.name(), **kw)
        self.writers.append(writer)
        return writer

    def reader(self, name, *args, **kw):
        reader = dp.Reader(name, *args, **kw)
        self.readers.append(reader)
        return reader

    def wait_for(self, predicate, timeout=3.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.002)
        return False


class TestRead(RingTest):
    def test_frames_in_order(self):
        w = self.writer(slot_count=4, content_type="application/x-test")
        r = self.reader(w.name)
        self.assertEqual(r.content_type, "application/x-test")
        self.assertEqual(r.generation, 1)
        self.assertIsNone(r.read(timeout=0))
        sent = []
        for i in range(3):
            payload = bytes([i]) * (100 + i)
            meta = {"topic": "t%d" % i, "meta": {"i": i}}
            w.write(payload, meta, realtime_ns=1000 + i, monotonic_ns=2000 + i)
            sent.append((payload, meta))
        for i, (payload, meta) in enumerate(sent):
            f = r.read(timeout=1)
            self.assertIsNotNone(f)
            self.assertEqual(f.seq, i + 1)
            self.assertEqual(f.data, payload)
            self.assertEqual(f.meta, meta)
            self.assertEqual(f.missed, 0)
            self.assertEqual(f.realtime_ns, 1000 + i)
            self.assertEqual(f.monotonic_ns, 2000 + i)
            self.assertEqual(f.generation, 1)
            self.assertEqual(f.content_type, "application/x-test")
        self.assertIsNone(r.read(timeout=0))

    def test_new_reader_skips_old_frames_unless_from_oldest(self):
        w = self.writer(slot_count=4)
        for i in range(10):
            w.write(b"x%d" % (i + 1))
        r = self.reader(w.name)
        self.assertIsNone(r.read(timeout=0))
        old = self.reader(w.name, from_oldest=True)
        # Frames 7..10 are in the ring, but 7's slot is the one written next.
        self.assertEqual([(f.seq, f.missed) for f in (old.read(0), old.read(0), old.read(0))], [(8, 0), (9, 0), (10, 0)])
        self.assertIsNone(old.read(timeout=0))
        w.write(b"x11")
        self.assertEqual(r.read(timeout=1).data, b"x11")
        self.assertEqual(old.read(timeout=1).data, b"x11")

    def test_from_oldest_on_empty_and_partial_ring(self):
        w = self.writer(slot_count=8)
        r0 = self.reader(w.name, from_oldest=True)
        w.write(b"1")
        w.write(b"2")
        r = self.reader(w.name, from_oldest=True)
        self.assertEqual((r.read(0).seq, r.read(0).seq), (1, 2))
        self.assertEqual(r0.read(0).seq, 1)

    def test_overrun_reports_missed(self):
        w = self.writer(slot_count=4)
        r = self.reader(w.name)
        for i in range(1, 11):
            w.write(b"frame%d" % i)
        f = r.read(timeout=1)
        # Slots hold 7..10; 7 is overwritten next, and an overrun resumes
        # halfway through the rest: at 9.
        self.assertEqual((f.seq, f.missed, f.data), (9, 8, b"frame9"))
        f = r.read(timeout=1)
        self.assertEqual((f.seq, f.missed), (10, 0))
        self.assertIsNone(r.read(timeout=0))

    def test_slots_claimed_ahead_count_as_missed(self):
        # A zero-copy writer queues slots with a camera driver before it
        # commits them: each holds the odd state of the frame it will get.
        w = self.writer(slot_count=8)
        for i in range(1, 11):
            w.write(b"frame%d" % i)
        for n in (11, 12, 13, 14):
            w.u64(w.slot_off(n), 2 * n + 1)
        # Slots hold 7..10 committed and 11..14 claimed (in the slots of 3..6).
        # The oldest-held rule starts at 4, whose slot is claimed.
        r = self.reader(w.name, from_oldest=True)
        got = [r.read(timeout=0) for _ in range(4)]
        self.assertEqual([(f.seq, f.missed) for f in got], [(7, 3), (8, 0), (9, 0), (10, 0)])
        self.assertEqual(got[0].data, b"frame7")
        self.assertIsNone(r.read(timeout=0))
        w.write(b"frame11")
        f = r.read(timeout=0)
        self.assertEqual((f.seq, f.missed, f.data), (11, 0, b"frame11"))

    def test_single_slot_ring(self):
        w = self.writer(slot_count=1)
        r = self.reader(w.name)
        for i in range(1, 4):
            w.write(b"%d" % i)
        f = r.read(timeout=1)
        self.assertEqual((f.seq, f.missed, f.data), (3, 2, b"3"))
        w.write(b"4")
        f = r.read(timeout=1)
        self.assertEqual((f.seq, f.missed, f.data), (4, 0, b"4"))

    def test_latest(self):
        w = self.writer(slot_count=4)
        r = self.reader(w.name)
        self.assertIsNone(r.latest())
        for i in range(1, 6):
            w.write(b"%d" % i)
        f = r.latest()
        self.assertEqual((f.seq, f.data, f.missed), (5, b"5", 4))
        self.assertIsNone(r.read(timeout=0))
        w.write(b"6")
        f = r.read(timeout=1)
        self.assertEqual((f.seq, f.missed), (6, 0))
        self.assertEqual(r.latest().seq, 6)  # the newest again, nothing missed
        self.assertEqual(r.latest().missed, 0)

    def test_empty_payload_and_meta(self):
        w = self.writer()
        r = self.reader(w.name)
        w.write(b"")
        f = r.read(timeout=1)
        self.assertEqual((f.data, f.meta, len(f)), (b"", {}, 0))

    def test_full_slot_and_full_meta(self):
        w = self.writer(slot_size=5000)
        r = self.reader(w.name)
        payload = os.urandom(5000)
        meta = json.dumps({"pad": "y" * 4000}).encode()
        self.assertLessEqual(len(meta), 4032)
        w.write(payload, meta)
        f = r.read(timeout=1)
        self.assertEqual(f.data, payload)
        self.assertEqual(f.meta["pad"], "y" * 4000)

    def test_meta_that_is_not_a_json_object(self):
        w = self.writer(slot_count=8)
        r = self.reader(w.name)
        for meta in (b"not json", b"[1, 2]", b"\xff\xfe", b"42", b'{"ok": true}'):
            w.write(b"p", meta)
        self.assertEqual([r.read(1).meta for _ in range(5)], [{}, {}, {}, {}, {"ok": True}])

    def test_iteration_and_repr(self):
        w = self.writer()
        r = self.reader(w.name)
        w.write(b"a")
        w.write(b"b")
        frames = list(itertools.islice(r, 2))
        self.assertEqual([f.data for f in frames], [b"a", b"b"])
        self.assertIn("seq=1", repr(frames[0]))
        self.assertIn(w.name, repr(r))


class TestWaiting(RingTest):
    def test_timeout_returns_none_after_the_timeout(self):
        w = self.writer()
        r = self.reader(w.name)
        start = time.monotonic()
        self.assertIsNone(r.read(timeout=0.3))
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.29)
        self.assertLess(elapsed, 1.0)
        start = time.monotonic()
        self.assertIsNone(r.read(timeout=0))
        self.assertLess(time.monotonic() - start, 0.05)

    def _blocked_read_is_woken(self):
        # A single FUTEX_WAIT far longer than the test: only a FUTEX_WAKE from
        # the writer can end it early.
        w = self.writer()
        r = self.reader(w.name)
        written = {}

        def write_when_waiting():
            if self.wait_for(lambda: w.waiters != 0):
                written["waiters"] = w.waiters
                time.sleep(0.05)
                written["at"] = time.monotonic()
                w.write(b"wake")

        thread = threading.Thread(target=write_when_waiting)
        with mock.patch.object(dp, "_WAIT_SLICE", 10.0):
            thread.start()
            start = time.monotonic()
            f = r.read(timeout=5)
            done = time.monotonic()
        thread.join()
        self.assertEqual(written.get("waiters"), 1)
        self.assertIsNotNone(f)
        self.assertEqual(f.data, b"wake")
        self.assertLess(done - written["at"], 0.5, "read returned %.3fs after the write" % (done - written["at"]))
        self.assertLess(done - start, 3)
        self.assertEqual(w.waiters, 0, "waiters decremented after the wait")

    @unittest.skipIf(dp._futex_syscall_number() is None, "no futex syscall number for this machine")
    def test_futex_wake_ends_a_blocked_read(self):
        self._blocked_read_is_woken()

    @unittest.skipIf(dp._futex_syscall_number() is None, "no futex syscall number for this machine")
    def test_futex_wake_with_plain_read_modify_writes(self):
        with mock.patch.object(dp, "_ATOMICS", dp._PlainAtomics()):
            self._blocked_read_is_woken()

    def test_polling_fallback_without_futex(self):
        w = self.writer()
        r = self.reader(w.name)
        with mock.patch.object(dp, "_FUTEX", False):
            start = time.monotonic()
            self.assertIsNone(r.read(timeout=0.2))
            self.assertGreaterEqual(time.monotonic() - start, 0.19)
            self.assertEqual(w.waiters, 0, "polling does not count as waiting on the futex")
            timer = threading.Timer(0.1, w.write, args=(b"polled",))
            timer.start()
            start = time.monotonic()
            f = r.read(timeout=3)
            timer.join()
            self.assertEqual(f.data, b"polled")
            self.assertLess(time.monotonic() - start, 1.0)

    def test_wait_forever_gets_a_frame(self):
        w = self.writer()
        r = self.reader(w.name)
        timer = threading.Timer(0.15, w.write, args=(b"later",))
        timer.start()
        f = r.read(timeout=None)
        timer.join()
        self.assertEqual(f.data, b"later")


class TestWriterChanges(RingTest):
    def test_generation_change_resyncs(self):
        w = self.writer(slot_count=4, content_type="application/x-one")
        r = self.reader(w.name)
        for i in range(1, 6):
            w.write(b"old%d" % i)
        self.assertEqual(r.read(1).seq, 4)  # overrun: halfway through 3..5
        w.takeover(content_type="application/x-two")
        w.write(b"new1")
        w.write(b"new2")
        f = r.read(timeout=1)
        self.assertEqual((f.seq, f.generation, f.data, f.missed), (1, 2, b"new1", 0))
        self.assertEqual(f.content_type, "application/x-two")
        self.assertEqual(r.generation, 2)
        self.assertEqual(r.read(1).data, b"new2")

    def test_generation_change_wakes_a_blocked_reader(self):
        w = self.writer()
        for i in range(3):
            w.write(b"old")
        r = self.reader(w.name)
        self.assertEqual(r.read(0), None)

        def takeover():
            w.takeover()
            w.write(b"after takeover")

        timer = threading.Timer(0.1, takeover)
        timer.start()
        f = r.read(timeout=3)
        timer.join()
        self.assertEqual((f.seq, f.generation, f.data), (1, 2, b"after takeover"))

    def test_replaced_segment_is_reopened(self):
        w = self.writer(slot_count=4, slot_size=4096, content_type="application/octet-stream")
        r = self.reader(w.name)
        w.write(b"first")
        self.assertEqual(r.read(1).data, b"first")
        index = r.table_index
        self.assertEqual(w.entry(index)[0], os.getpid())
        w2 = w.replace(slot_count=8, slot_size=10000, content_type="image/jpeg")
        self.writers.append(w2)
        w2.write(b"\xff\xd8jpeg", {"frame": 1})
        f = r.read(timeout=2)
        self.assertIsNotNone(f)
        self.assertEqual((f.seq, f.generation, f.data, f.missed), (1, 2, b"\xff\xd8jpeg", 0))
        self.assertEqual(f.content_type, "image/jpeg")
        self.assertEqual((r.slot_count, r.slot_size, r.content_type), (8, 10000, "image/jpeg"))
        # The entry moved from the old segment to the new one.
        self.assertEqual(w.entry(index)[0], 0)
        self.assertEqual(w2.entry(r.table_index)[0], os.getpid())
        w.close_mapping()

    def test_replaced_segment_noticed_by_a_blocked_read(self):
        w = self.writer()
        r = self.reader(w.name)
        holder = {}

        def replace():
            holder["w2"] = w.replace(slot_count=2, slot_size=4096, content_type="text/plain")
            holder["w2"].write(b"hello")

        timer = threading.Timer(0.1, replace)
        timer.start()
        f = r.read(timeout=3)
        timer.join()
        self.writers.append(holder["w2"])
        self.assertEqual((f.data, f.content_type, f.generation), (b"hello", "text/plain", 2))

    def test_new_inode_after_close_and_unlink(self):
        w = self.writer()
        r = self.reader(w.name)
        w.write(b"one")
        self.assertEqual(r.read(1).data, b"one")
        w.close()  # WRITER_CLOSED, unlink
        self.assertFalse(r.writer_alive())
        start = time.monotonic()
        self.assertIsNone(r.read(timeout=0.3))  # missing file: keep waiting
        self.assertGreaterEqual(time.monotonic() - start, 0.29)
        w2 = self.writer(w.name)
        w2.write(b"reborn")
        f = r.read(timeout=2)
        self.assertEqual((f.seq, f.data, f.generation), (1, b"reborn", 1))
        self.assertTrue(r.writer_alive())

    def test_reopen_skips_to_oldest_of_new_segment(self):
        w = self.writer()
        r = self.reader(w.name)
        w.close()
        w2 = self.writer(w.name, slot_count=2)
        for i in range(1, 6):
            w2.write(b"%d" % i)
        f = r.read(timeout=2)
        # 5 frames in a 2-slot ring: only frame 5 is safe to read.
        self.assertEqual((f.seq, f.missed), (5, 4))

    def test_writer_alive(self):
        w = self.writer()
        r = self.reader(w.name)
        self.assertTrue(r.writer_alive())
        w.u32(48, dead_pid())
        self.assertFalse(r.writer_alive())
        w.u32(48, 0)
        self.assertFalse(r.writer_alive())


class TestValidation(RingTest):
    def assertRingError(self, name, fragment, cls=dp.RingError):
        with self.assertRaises(cls) as ctx:
            self.reader(name)
        self.assertIn(fragment, str(ctx.exception))
        return ctx.exception

    def corrupted(self, off, fmt, *values, **kw):
        w = self.writer(**kw)
        w.poke(off, fmt, *values)
        return w

    def test_bad_magic(self):
        w = self.corrupted(0, "8s", b"XVPRING\0")
        self.assertRingError(w.name, "bad magic")

    def test_zero_magic_is_not_ready(self):
        w = self.corrupted(0, "8s", b"\0" * 8)
        self.assertRingError(w.name, "still being created", dp.RingNotReady)

    def test_unknown_version(self):
        w = self.corrupted(8, "<I", 2)
        self.assertRingError(w.name, "version 2")

    def test_header_sizes(self):
        self.assertRingError(self.corrupted(12, "<I", 8192).name, "header_size 8192")
        self.assertRingError(self.corrupted(20, "<I", 64).name, "slot_header_size 64")

    def test_slot_count_zero(self):
        self.assertRingError(self.corrupted(16, "<I", 0).name, "slot_count 0")

    def test_slot_count_huge(self):
        self.assertRingError(self.corrupted(16, "<I", 4097).name, "slot_count 4097")
        self.assertRingError(self.corrupted(16, "<I", 0xFFFFFFFF).name, "slot_count 4294967295")

    def test_slot_count_beyond_file(self):
        # Consistent header, but the layout needs more than the file holds.
        w = self.writer(slot_count=4)
        w.poke(16, "<I", 4096)
        w.poke(40, "<Q", 4096 + 4096 * w.stride)
        self.assertRingError(w.name, "segment has %d" % w.total)

    def test_slot_size(self):
        self.assertRingError(self.corrupted(24, "<Q", 0).name, "slot_size 0")
        self.assertRingError(self.corrupted(24, "<Q", 1 << 63).name, "slot_size %d" % (1 << 63))

    def test_stride_too_small(self):
        w = self.writer(slot_size=4096)  # stride 8192
        w.poke(32, "<Q", 4096)
        w.poke(40, "<Q", 4096 + 4 * 4096)
        self.assertRingError(w.name, "slot_stride 4096")

    def test_stride_not_page_multiple(self):
        w = self.writer(slot_size=4096)
        w.poke(32, "<Q", 8200)
        w.poke(40, "<Q", 4096 + 4 * 8200)
        self.assertRingError(w.name, "slot_stride 8200")

    def test_total_size_mismatch(self):
        w = self.writer()
        w.poke(40, "<Q", w.total + 4096)
        self.assertRingError(w.name, "total_size %d" % (w.total + 4096))

    def test_total_size_larger_than_file(self):
        w = self.writer(slot_count=4)
        os.ftruncate(w.fd, w.total - w.stride)
        w.close_mapping()
        self.assertRingError(w.name, "segment has %d" % (w.total - w.stride))

    def test_content_type_not_terminated(self):
        w = self.writer()
        w.mm[128:384] = b"a" * 256
        w.poke(88, "<I", 255)
        self.assertRingError(w.name, "content type is not terminated")

    def test_content_type_len_too_big(self):
        self.assertRingError(self.corrupted(88, "<I", 256).name, "content_type_len 256")

    def test_reader_capacity(self):
        self.assertRingError(self.corrupted(76, "<I", 31).name, "reader_capacity 31")

    def test_truncated_files(self):
        for size in (0, 100, 4095):
            name = self.name()
            with open("/dev/shm/" + name, "wb") as f:
                f.write(b"DVPRING\0".ljust(size, b"\1")[:size])
            with self.assertRaises(dp.RingError) as ctx:
                self.reader(name)
            self.assertIn("smaller than a ring header", str(ctx.exception))

    def test_header_only_file_with_garbage(self):
        name = self.name()
        with open("/dev/shm/" + name, "wb") as f:
            f.write(os.urandom(4096))
        with self.assertRaises(dp.RingError):
            self.reader(name)

    def test_not_a_regular_file(self):
        name = self.name()
        os.mkdir("/dev/shm/" + name)
        with self.assertRaises(dp.RingError) as ctx:
            self.reader(name)
        self.assertIn("not a regular file", str(ctx.exception))

    def test_symbolic_link_refused(self):
        w = self.writer()
        name = self.name()
        os.symlink(w.path, "/dev/shm/" + name)
        with self.assertRaises(dp.RingError) as ctx:
            self.reader(name)
        self.assertIn("symbolic link", str(ctx.exception))

    def test_slot_length_larger_than_slot(self):
        w = self.writer(slot_size=4096)
        r = self.reader(w.name)
        n = w.write(b"ok")
        w.poke(w.slot_off(n) + 8, "<Q", 4097)
        with self.assertRaises(dp.RingError) as ctx:
            r.read(timeout=1)
        self.assertIn("length 4097", str(ctx.exception))
        with self.assertRaises(dp.RingError):
            r.latest()

    def test_slot_meta_len_too_big(self):
        w = self.writer()
        r = self.reader(w.name)
        n = w.write(b"ok", b"{}")
        w.poke(w.slot_off(n) + 32, "<I", 4033)
        with self.assertRaises(dp.RingError) as ctx:
            r.read(timeout=1)
        self.assertIn("metadata 4033", str(ctx.exception))

    def test_slot_states_that_never_match(self):
        w = self.writer()
        r = self.reader(w.name)
        w.u64(56, 5)  # write_seq says 5, but no slot was ever committed
        with mock.patch.object(dp, "_MAX_SPINS", 1000):
            with self.assertRaises(dp.RingError) as ctx:
                r.read(timeout=1)
            self.assertIn("never settles", str(ctx.exception))
            with self.assertRaises(dp.RingError):
                r.latest()

    def test_huge_write_seq(self):
        w = self.writer()
        r = self.reader(w.name)
        w.u64(56, (1 << 64) - 1)
        with mock.patch.object(dp, "_MAX_SPINS", 1000):
            with self.assertRaises(dp.RingError):
                r.read(timeout=1)

    def test_write_seq_going_back_is_followed(self):
        w = self.writer()
        r = self.reader(w.name)
        for _ in range(3):
            w.write(b"x")
        self.assertEqual(r.read(1).seq, 1)
        # A broken writer restarts without a new generation.
        w.u64(56, 0)
        for i in range(4):
            w.u64(4096 + i * w.stride, 0)
        self.assertIsNone(r.read(timeout=0))
        w.write(b"again")
        self.assertEqual(r.read(1).data, b"again")

    def test_bad_names(self):
        for bad in ("", ".", "..", "a/b", "../etc", "a b", "x" * 201, "caf\u00e9", "a\nb", "a\0b", "ring\n"):
            with self.assertRaises(ValueError, msg=repr(bad)):
                dp.Reader(bad)
        with self.assertRaises(TypeError):
            dp.Reader(b"bytes")
        # Valid names that simply do not exist.
        for good in ("x" * 200, "a.b_c-D9", "..."):
            with self.assertRaises(FileNotFoundError):
                dp.Reader(good)

    def test_missing_ring(self):
        name = self.name()
        with self.assertRaises(FileNotFoundError) as ctx:
            dp.Reader(name)
        self.assertIn("/dev/shm/" + name, str(ctx.exception))
        self.assertEqual(ctx.exception.filename, "/dev/shm/" + name)


class TestReaderTable(RingTest):
    def test_entry_claimed_updated_and_released(self):
        w = self.writer(slot_count=4)
        r = self.reader(w.name)
        i = r.table_index
        self.assertIsNotNone(i)
        pid, gen, last_seq, hb0, missed = w.entry(i)
        self.assertEqual((pid, gen, last_seq, missed), (os.getpid(), 1, 0, 0))
        self.assertGreater(hb0, 0)
        for n in range(1, 8):
            w.write(b"%d" % n)
        f = r.read(1)
        self.assertEqual((f.seq, f.missed), (6, 5))
        pid, gen, last_seq, hb1, missed = w.entry(i)
        self.assertEqual((last_seq, missed), (6, 5))
        self.assertGreater(hb1, hb0)
        r.read(1)
        r.read(1)
        self.assertEqual(w.entry(i)[2], 7)
        # Wait timeouts refresh the heartbeat too.
        self.assertIsNone(r.read(timeout=0.1))
        self.assertGreater(w.entry(i)[3], hb1)
        r.close()
        self.assertEqual(w.entry(i)[0], 0)
        r.close()  # idempotent

    def test_two_readers_two_entries(self):
        w = self.writer()
        a, b = self.reader(w.name), self.reader(w.name)
        self.assertNotEqual(a.table_index, b.table_index)
        self.assertEqual(w.entry(a.table_index)[0], os.getpid())
        self.assertEqual(w.entry(b.table_index)[0], os.getpid())

    def test_plain_read_modify_write_claim(self):
        w = self.writer()
        with mock.patch.object(dp, "_ATOMICS", dp._PlainAtomics()):
            a, b = self.reader(w.name), self.reader(w.name)
            self.assertNotEqual(a.table_index, b.table_index)
            index = a.table_index
            a.close()
            self.assertEqual(w.entry(index)[0], 0)
            self.assertEqual(w.entry(b.table_index)[0], os.getpid())

    def test_dead_entries_are_reclaimed(self):
        w = self.writer()
        gone = dead_pid()
        for i in range(32):
            w.poke(384 + 32 * i, "<I", gone)
        r = self.reader(w.name)
        self.assertIsNotNone(r.table_index)
        self.assertEqual(w.entry(r.table_index)[0], os.getpid())
        self.assertEqual(sum(1 for i in range(32) if w.entry(i)[0] == gone), 31)

    def test_full_table_still_reads(self):
        w = self.writer()
        alive = os.getppid()
        for i in range(32):
            w.poke(384 + 32 * i, "<I", alive)
        r = self.reader(w.name)
        self.assertIsNone(r.table_index)
        w.write(b"still")
        self.assertEqual(r.read(1).data, b"still")
        r.close()
        self.assertTrue(all(w.entry(i)[0] == alive for i in range(32)))

    def test_entry_freed_by_writer_is_taken_again(self):
        w = self.writer()
        r = self.reader(w.name)
        i = r.table_index
        w.poke(384 + 32 * i, "<I", 0)  # the writer thought we were dead
        w.write(b"x")
        r.read(1)
        self.assertIsNotNone(r.table_index)
        self.assertEqual(w.entry(r.table_index)[0], os.getpid())
        self.assertEqual(w.entry(r.table_index)[2], 1)

    def test_unregistered_reader(self):
        w = self.writer()
        r = self.reader(w.name, register=False)
        self.assertIsNone(r.table_index)
        self.assertTrue(all(w.entry(i)[0] == 0 for i in range(32)))

    def test_read_only_fallback(self):
        w = self.writer()
        real_open = os.open

        def no_write_access(path, flags, *args, **kw):
            if flags & os.O_ACCMODE == os.O_RDWR and path == w.path:
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, flags, *args, **kw)

        with mock.patch("os.open", no_write_access):
            r = self.reader(w.name)
        self.assertFalse(r.writable)
        self.assertIsNone(r.table_index)
        self.assertTrue(all(w.entry(i)[0] == 0 for i in range(32)))
        seen = {}

        def write_later():
            time.sleep(0.15)
            seen["waiters"] = w.waiters
            w.write(b"read-only")

        thread = threading.Thread(target=write_later)
        thread.start()
        start = time.monotonic()
        f = r.read(timeout=3)
        thread.join()
        self.assertEqual(f.data, b"read-only")
        self.assertEqual(seen["waiters"], 0)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertEqual(r.info()["write_seq"], 1)

    def test_context_manager_and_closed_reader(self):
        w = self.writer()
        with dp.Reader(w.name) as r:
            i = r.table_index
            self.assertEqual(w.entry(i)[0], os.getpid())
        self.assertTrue(r.closed)
        self.assertEqual(w.entry(i)[0], 0)
        with self.assertRaises(ValueError):
            r.read(0)
        with self.assertRaises(ValueError):
            r.latest()

    def test_close_from_another_thread(self):
        w = self.writer()
        r = self.reader(w.name)
        index = r.table_index
        result = {}

        def blocked_read():
            result["frame"] = r.read(timeout=10)

        thread = threading.Thread(target=blocked_read)
        thread.start()
        self.assertTrue(self.wait_for(lambda: w.waiters != 0))
        start = time.monotonic()
        r.close()
        thread.join(5)
        self.assertFalse(thread.is_alive())
        self.assertIsNone(result["frame"])
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertTrue(r.closed)
        self.assertEqual(w.entry(index)[0], 0)
        self.assertEqual(w.waiters, 0)
        with self.assertRaises(ValueError):
            r.read(0)

    def test_info(self):
        w = self.writer(slot_count=3, slot_size=1000, content_type="audio/x-raw,format=S16LE,rate=48000,channels=2")
        r = self.reader(w.name)
        w.write(b"abcd")
        info = r.info()
        self.assertEqual(info["slot_count"], 3)
        self.assertEqual(info["slot_size"], 1000)
        self.assertEqual(info["slot_stride"], 8192)
        self.assertEqual(info["write_seq"], 1)
        self.assertEqual(info["writer_pid"], os.getpid())
        self.assertTrue(info["writer_alive"])
        self.assertEqual(info["content_type"], "audio/x-raw,format=S16LE,rate=48000,channels=2")
        mine = [e for e in info["readers"] if e["self"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["behind"], 1)
        json.dumps(info)


class TestConcurrency(RingTest):
    @unittest.skipIf(dp._futex_syscall_number() is None, "no futex syscall number for this machine")
    def test_writer_in_another_process(self):
        """A writer process racing ahead: every frame we get is whole."""
        name = self.name()
        frames = 20000
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.path.insert(0, %r); import test_devplane_shm as t; t._stress_writer(%r, %d)" % (HERE, name, frames)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self.assertEqual(child.stdout.readline().strip(), "ready")
            r = self.reader(name, from_oldest=True)
            child.stdin.write("go\n")
            child.stdin.flush()
            prev, got, missed = 0, 0, 0
            while prev < frames:
                f = r.read(timeout=10)
                self.assertIsNotNone(f, "stalled after frame %d" % prev)
                self.assertEqual(f.seq, prev + 1 + f.missed)
                self.assertEqual(f.meta, {"seq": f.seq})
                self.assertEqual(f.data, stress_payload(f.seq), "torn frame %d" % f.seq)
                prev = f.seq
                got += 1
                missed += f.missed
            self.assertEqual(got + missed, frames)
            self.assertEqual(child.stdout.readline().strip(), "done")
            child.stdin.write("exit\n")
            child.stdin.flush()
            self.assertEqual(child.wait(10), 0)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdin.close()
            child.stdout.close()


@unittest.skipIf(numpy is None, "numpy is not installed")
class TestNumpy(RingTest):
    def frame(self, content_type, data):
        return dp.Frame(data, 1, {}, 0, content_type, 0, 0, 1)

    def test_gray8_with_stride(self):
        rows = [bytes([10 * r + c for c in range(4)]) + b"\xee" * 4 for r in range(3)]
        f = self.frame("video/x-raw,format=GRAY8,width=4,height=3,stride=8", b"".join(rows))
        a = f.array
        self.assertEqual(a.shape, (3, 4))
        self.assertEqual(a.dtype, numpy.uint8)
        self.assertEqual(a[2, 3], 23)
        self.assertFalse(a.flags.writeable)
        self.assertFalse((a == 0xEE).any())

    def test_rgb_bgr_yuy2(self):
        rgb = bytes(range(6)) + b"\0\0" + bytes(range(6, 12)) + b"\0\0"  # 2x2, rows padded to 8
        a = self.frame("video/x-raw,format=RGB,width=2,height=2,stride=8", rgb).array
        self.assertEqual(a.shape, (2, 2, 3))
        self.assertEqual(a[1, 1].tolist(), [9, 10, 11])
        bgr = bytes(range(12))
        a = self.frame("video/x-raw,format=(string)BGR,width=(int)2,height=(int)2", bgr).array
        self.assertEqual(a.shape, (2, 2, 3))
        self.assertEqual(a[1, 0].tolist(), [6, 7, 8])
        yuy2 = bytes(range(16))
        a = self.frame("video/x-raw,format=YUY2,width=4,height=2,stride=8", yuy2).array
        self.assertEqual(a.shape, (2, 4, 2))
        self.assertEqual(a[1, 3].tolist(), [14, 15])

    def test_video_too_short(self):
        with self.assertRaises(ValueError) as ctx:
            self.frame("video/x-raw,format=RGB,width=4,height=4,stride=12", b"\0" * 40).array
        self.assertIn("needs 48", str(ctx.exception))

    def test_audio(self):
        samples = struct.pack("<6h", 1, -1, 2, -2, 3, -3)
        a = self.frame("audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved", samples).array
        self.assertEqual(a.shape, (3, 2))
        self.assertEqual(a.dtype, numpy.dtype("<i2"))
        self.assertEqual(a[:, 1].tolist(), [-1, -2, -3])
        a = self.frame("audio/x-raw,format=F32LE,rate=16000,channels=1", struct.pack("<3f", 0.5, -0.25, 1.0)).array
        self.assertEqual(a.shape, (3, 1))
        self.assertEqual(a[:, 0].tolist(), [0.5, -0.25, 1.0])
        a = self.frame("audio/x-raw,format=S32LE,channels=2", struct.pack("<4i", 1, 2, 3, 4)).array
        self.assertEqual(a.tolist(), [[1, 2], [3, 4]])
        with self.assertRaises(ValueError):
            self.frame("audio/x-raw,format=S16LE,channels=2", b"\0" * 6).array

    def test_other_content_and_overrides(self):
        f = self.frame("image/jpeg", b"\xff\xd8\xff")
        self.assertEqual(f.array.tolist(), [255, 216, 255])
        f = self.frame("application/octet-stream", struct.pack("<4H", 1, 2, 3, 4))
        self.assertEqual(f.numpy(dtype="<u2").tolist(), [1, 2, 3, 4])
        self.assertEqual(f.numpy(dtype="<u2", shape=(2, 2)).tolist(), [[1, 2], [3, 4]])
        self.assertEqual(f.numpy(shape=(2, -1)).shape, (2, 4))
        with self.assertRaises(ValueError):
            f.numpy(dtype="<u2", shape=(3, 3))

    def test_from_the_ring(self):
        w = self.writer(content_type="video/x-raw,format=GRAY8,width=16,height=8,stride=16")
        r = self.reader(w.name)
        w.write(bytes(range(128)))
        a = r.read(1).array
        self.assertEqual(a.shape, (8, 16))
        self.assertEqual(int(a[7, 15]), 127)

    def test_missing_numpy(self):
        f = self.frame("image/jpeg", b"x")
        with mock.patch.dict(sys.modules, {"numpy": None}):
            with self.assertRaises(ImportError) as ctx:
                f.numpy()
            self.assertIn("numpy", str(ctx.exception))
            with self.assertRaises(ImportError):
                f.array


class TestCaps(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(
            dp.parse_caps("video/x-raw,format=YUY2,width=1920,height=1080,stride=3840"),
            ("video/x-raw", {"format": "YUY2", "width": 1920, "height": 1080, "stride": 3840}),
        )
        self.assertEqual(
            dp.parse_caps('video/x-raw(memory:DMABuf), format=(string)"RGB", width=(int)2, framerate=30/1; image/jpeg'),
            ("video/x-raw", {"format": "RGB", "width": 2, "framerate": "30/1"}),
        )
        self.assertEqual(dp.parse_caps("application/octet-stream"), ("application/octet-stream", {}))
        self.assertEqual(dp.parse_caps(""), ("", {}))
        self.assertEqual(dp.parse_caps('text/plain,note="a,b;c"')[1], {"note": "a,b;c"})


class TestCommandLine(RingTest):
    def run_cli(self, *args, timeout=20):
        return subprocess.run(
            [sys.executable, SCRIPT] + list(args), capture_output=True, text=True, timeout=timeout
        )

    def test_read_frames_from_another_process(self):
        w = self.writer(content_type="application/x-cli")
        child = subprocess.Popen(
            [sys.executable, SCRIPT, "read", w.name, "--count", "2", "--timeout", "10", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # The child announces itself in `waiters` while it sleeps on the futex.
            self.assertTrue(self.wait_for(lambda: w.waiters != 0, timeout=10), "reader never waited")
            w.write(b"one", {"topic": "a"}, realtime_ns=11, monotonic_ns=22)
            w.write(b"two" * 1000)
            out, err = child.communicate(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        self.assertEqual(child.returncode, 0, err)
        lines = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(lines), 2)
        self.assertEqual(
            lines[0],
            {
                "seq": 1,
                "missed": 0,
                "length": 3,
                "sha256": hashlib.sha256(b"one").hexdigest(),
                "meta": {"topic": "a"},
                "content_type": "application/x-cli",
                "realtime_ns": 11,
                "monotonic_ns": 22,
                "generation": 1,
            },
        )
        self.assertEqual(list(lines[0]), ["seq", "missed", "length", "sha256", "meta", "content_type", "realtime_ns", "monotonic_ns", "generation"])
        self.assertEqual((lines[1]["seq"], lines[1]["length"]), (2, 3000))
        self.assertEqual(lines[1]["sha256"], hashlib.sha256(b"two" * 1000).hexdigest())

    def test_read_from_oldest(self):
        w = self.writer()
        for i in range(3):
            w.write(b"%d" % i)
        res = self.run_cli("read", w.name, "--count", "3", "--timeout", "2", "--from-oldest")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual([json.loads(l)["seq"] for l in res.stdout.splitlines()], [1, 2, 3])

    def test_read_timeout_exit_code(self):
        w = self.writer()
        start = time.monotonic()
        res = self.run_cli("read", w.name, "--timeout", "0.3")
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.assertEqual(res.stdout, "")

    def test_read_waits_for_the_ring_to_appear(self):
        name = self.name()
        self.assertEqual(self.run_cli("read", name, "--timeout", "0.2").returncode, 3)
        child = subprocess.Popen(
            [sys.executable, SCRIPT, "read", name, "--count", "1", "--timeout", "10"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(0.3)
            w = self.writer(name)
            w.write(b"first")
            out, err = child.communicate(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        self.assertEqual(child.returncode, 0, err)
        self.assertEqual(json.loads(out)["sha256"], hashlib.sha256(b"first").hexdigest())

    def test_errors(self):
        self.assertEqual(self.run_cli("read", "../etc").returncode, 2)
        w = self.writer()
        w.poke(16, "<I", 0)
        res = self.run_cli("read", w.name, "--timeout", "1")
        self.assertEqual(res.returncode, 1)
        self.assertIn("slot_count 0", res.stderr)
        res = self.run_cli("info", self.name())
        self.assertEqual(res.returncode, 1)
        self.assertIn("/dev/shm/", res.stderr)

    def test_info(self):
        w = self.writer(slot_count=5, content_type="image/jpeg")
        r = self.reader(w.name)
        w.write(b"x")
        res = self.run_cli("info", w.name)
        self.assertEqual(res.returncode, 0, res.stderr)
        info = json.loads(res.stdout)
        self.assertEqual((info["slot_count"], info["content_type"], info["write_seq"]), (5, "image/jpeg", 1))
        self.assertEqual([e["pid"] for e in info["readers"]], [os.getpid()])
        self.assertEqual(info["readers"][0]["index"], r.table_index)
        # `info` itself does not register.
        self.assertEqual(sum(1 for i in range(32) if w.entry(i)[0] != 0), 1)


if __name__ == "__main__":
    unittest.main()
