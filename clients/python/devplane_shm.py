#!/usr/bin/env python3
"""Reader for devplane shared-memory rings, using only the Python standard library.

A ring is the file /dev/shm/<name>, filled by one devplane writer (the
shm-publish node, a capture node, or another program) and read by any number
of readers. docs/shm-format.md is the contract this module implements; it
behaves like the C reader in native/include/devplane/shm_ring.h.

    from devplane_shm import Reader

    with Reader("camera0") as reader:
        print(reader.content_type)
        while True:
            frame = reader.read(timeout=1.0)
            if frame is None:
                continue                  # no frame within a second
            image = frame.array           # numpy view, when numpy is installed
            print(frame.seq, frame.missed, frame.meta)

Command line:

    python3 devplane_shm.py read NAME [--count N] [--timeout S] [--from-oldest] [--json]
    python3 devplane_shm.py info NAME

Linux and CPython 3.9 or later. Notes on what pure Python can and cannot do
here:

* Waiting uses FUTEX_WAIT through libc's syscall(), on x86_64, aarch64,
  riscv64 and 32-bit ARM and x86. Elsewhere (or if the futex call is refused,
  e.g. by a seccomp filter) the reader polls with short sleeps that back off
  from 0.5 ms to 20 ms, so a frame may be seen up to 20 ms late.
* The format asks for atomic read-modify-writes on two words: the `waiters`
  count and a reader-table entry's `pid`. When libatomic (part of the GCC
  runtime, usually installed) can be loaded, its __atomic_fetch_add_4 and
  __atomic_compare_exchange_4 do them for real. Without it they are plain
  read-modify-writes: `waiters` is advisory (the writer skips FUTEX_WAKE only
  when it reads 0), so a lost decrement costs the writer one extra syscall and
  a lost increment delays a wake-up; every FUTEX_WAIT is therefore cut into
  slices of at most 50 ms that re-check write_seq, which bounds that delay. A
  table entry is claimed by storing our pid and reading it back a moment
  later; two readers racing for the same entry are sorted out at the next
  heartbeat, which re-registers a reader that finds someone else's pid.
* Plain loads and stores of aligned 4- and 8-byte words go through ctypes,
  which does them with single instructions on 64-bit platforms; the seqlock
  re-check after every copy catches a torn frame. Python has no memory fences,
  so on weakly ordered CPUs (ARM) the ordering the protocol wants is supplied
  by the seqlock re-check together with the hundreds of instructions the
  interpreter executes between loads; that is an engineering argument, not a
  guarantee, and the C reader is the one to use where it matters.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import hashlib
import json
import mmap
import os
import platform
import re
import stat
import struct
import sys
import threading
import time

__all__ = [
    "Frame",
    "Reader",
    "RingError",
    "RingNotReady",
    "parse_caps",
    "ring_path",
    "validate_name",
]

# ---- format constants (docs/shm-format.md) ----

MAGIC = b"DVPRING\0"
VERSION = 1
HEADER_SIZE = 4096
SLOT_HEADER_SIZE = 4096
SLOT_FIXED = 64
META_CAPACITY = SLOT_HEADER_SIZE - SLOT_FIXED  # 4032
CONTENT_TYPE_CAPACITY = 256
READER_CAPACITY = 32
READER_ENTRY_SIZE = 32
MAX_SLOTS = 4096
NAME_MAX = 200
SHM_DIR = "/dev/shm"

FLAG_WRITER_CLOSED = 1
FLAG_REPLACED = 2

# Header field offsets.
_OFF_WRITER_PID = 48
_OFF_GENERATION = 52
_OFF_WRITE_SEQ = 56
_OFF_FUTEX = 64
_OFF_WAITERS = 68
_OFF_FLAGS = 72
_OFF_CONTENT_TYPE = 128
_OFF_READERS = 384

# magic .. content_type_len, offsets 0 to 92; "<" so no padding is inserted.
_HEADER = struct.Struct("<8sIIIIQQQIIQIIIIQI")
# state, length, realtime_ns, monotonic_ns, meta_len: offsets 0 to 36 of a slot.
_SLOT = struct.Struct("<QQQQI")
# pid, generation, last_seq, heartbeat_ns, missed.
_ENTRY = struct.Struct("<IIQQQ")

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

# A validated header still bounds these, as the C reader does, so that the
# arithmetic below stays far from anything a 64-bit size can not hold.
_MAX_SLOT_SIZE = 1 << 40
_MAX_SLOT_STRIDE = 1 << 41

# Longest single FUTEX_WAIT. Bounded so that a wake-up lost to a non-atomic
# `waiters` update, a read-only mapping (which can not announce itself in
# `waiters`) or a replaced segment is noticed within this time.
_WAIT_SLICE = 0.05
# How often, while idle, to stat /dev/shm/<name> for a replacement segment.
_STAT_INTERVAL = 0.05
# Polling when no futex is available.
_POLL_MIN = 0.0005
_POLL_MAX = 0.02
# Slot reads that may disagree with write_seq in a row before the segment is
# called corrupt. A live writer lapping the reader needs a handful; a hostile
# segment whose slot states never match write_seq would otherwise spin forever.
_MAX_SPINS = 100000

_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,%d}" % NAME_MAX)


class RingError(Exception):
    """The segment breaks the ring format (corrupt, hostile, or not a ring)."""


class RingNotReady(RingError):
    """The segment exists but is not a usable ring yet (still being created)."""


def validate_name(name: str) -> str:
    """Returns name if it is a valid ring name, else raises ValueError."""
    if not isinstance(name, str):
        raise TypeError("ring name must be a str, not %s" % type(name).__name__)
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            "invalid ring name %r: use 1 to %d of A-Z a-z 0-9 . _ - (and not '.' or '..')" % (name, NAME_MAX)
        )
    return name


def ring_path(name: str) -> str:
    """The file that holds ring `name`."""
    return os.path.join(SHM_DIR, validate_name(name))


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    except OSError:
        return False
    return True


# ---- shared-memory word access ----


def _load32(addr: int) -> int:
    return ctypes.c_uint32.from_address(addr).value


def _load64(addr: int) -> int:
    return ctypes.c_uint64.from_address(addr).value


def _store32(addr: int, value: int) -> None:
    ctypes.c_uint32.from_address(addr).value = value & _U32


def _store64(addr: int, value: int) -> None:
    ctypes.c_uint64.from_address(addr).value = value & _U64


class _PlainAtomics:
    """Read-modify-writes without hardware atomics; see the module notes."""

    real = False

    def add32(self, addr: int, delta: int) -> None:
        word = ctypes.c_uint32.from_address(addr)
        value = word.value + delta
        # Never wrap below zero: a huge `waiters` would only make the writer
        # issue pointless wake-ups, but it would also mislead `info`.
        word.value = max(0, value) & _U32

    def cas32(self, addr: int, expected: int, desired: int) -> bool:
        word = ctypes.c_uint32.from_address(addr)
        if word.value != expected:
            return False
        word.value = desired
        # Read back after a moment: a reader that stored its pid over ours in
        # the meantime has the entry, and we look for another.
        time.sleep(0.0005)
        return word.value == desired


class _LibAtomics:
    """The same operations through libatomic, so they are atomic for real."""

    real = True
    _SEQ_CST = 5

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._add = lib["__atomic_fetch_add_4"]
        self._add.restype = ctypes.c_uint32
        self._add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int]
        self._cas = lib["__atomic_compare_exchange_4"]
        self._cas.restype = ctypes.c_bool
        self._cas.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_int]

    def add32(self, addr: int, delta: int) -> None:
        self._add(addr, delta & _U32, self._SEQ_CST)

    def cas32(self, addr: int, expected: int, desired: int) -> bool:
        exp = ctypes.c_uint32(expected & _U32)
        return bool(self._cas(addr, ctypes.addressof(exp), desired & _U32, self._SEQ_CST, self._SEQ_CST))


def _load_atomics():
    for soname in ("libatomic.so.1", "libatomic.so"):
        try:
            return _LibAtomics(ctypes.CDLL(soname))
        except (OSError, AttributeError):
            continue
    return _PlainAtomics()


_ATOMICS = None  # loaded on first use; tests swap in _PlainAtomics()


def _atomics():
    global _ATOMICS
    if _ATOMICS is None:
        _ATOMICS = _load_atomics()
    return _ATOMICS


# ---- futex ----

_FUTEX_WAIT = 0  # not FUTEX_PRIVATE_FLAG: the writer is another process


class _Timespec(ctypes.Structure):
    # Two longs is the kernel's timespec for the plain futex syscall on every
    # architecture below, 32-bit ones included (they take old_timespec32 there,
    # whatever size the C library's time_t has).
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _futex_syscall_number():
    if not sys.platform.startswith("linux"):
        return None
    machine = platform.machine().lower()
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        if machine in ("x86_64", "amd64"):
            return 202
        if machine in ("aarch64", "arm64", "riscv64"):
            return 98  # the generic syscall table
        return None
    # A 32-bit interpreter, possibly on a 64-bit kernel (which then reports
    # its own machine but runs us through the 32-bit table).
    if machine.startswith("arm") or machine in ("aarch64", "arm64"):
        return 240
    if machine in ("i386", "i486", "i586", "i686", "x86", "x86_64", "amd64"):
        return 240
    return None


class _Futex:
    def __init__(self, number: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._number = ctypes.c_long(number)

    def wait(self, addr: int, expected: int, seconds: float) -> int:
        """FUTEX_WAIT for at most `seconds`; returns 0 or the errno."""
        seconds = max(0.0, seconds)
        ts = _Timespec(int(seconds), int((seconds - int(seconds)) * 1e9))
        # syscall() is variadic: every argument is passed as a full long.
        rc = self._syscall(
            self._number,
            ctypes.c_void_p(addr),
            ctypes.c_long(_FUTEX_WAIT),
            ctypes.c_ulong(expected & _U32),
            ctypes.byref(ts),
            None,
            ctypes.c_long(0),
        )
        return 0 if rc == 0 else ctypes.get_errno()


_FUTEX = None  # a _Futex, False when unavailable, None before the first use


def _futex():
    global _FUTEX
    if _FUTEX is None:
        number = _futex_syscall_number()
        try:
            _FUTEX = _Futex(number) if number is not None else False
        except (OSError, AttributeError):
            _FUTEX = False
    return _FUTEX or None


# ---- the mapped segment ----


class _PyBuffer(ctypes.Structure):
    # CPython's Py_buffer (unchanged since 3.3). Used only to learn the address
    # of a read-only mapping, which ctypes' from_buffer() refuses.
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_void_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


class _ReadOnlyExport:
    """A buffer export of a read-only mapping, held so its address stays valid."""

    def __init__(self, mm: mmap.mmap) -> None:
        get = ctypes.pythonapi.PyObject_GetBuffer
        get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
        get.restype = ctypes.c_int
        self._view = _PyBuffer()
        get(mm, ctypes.byref(self._view), 0)  # PyBUF_SIMPLE; raises on failure
        self.address = self._view.buf

    def release(self) -> None:
        if self._view is not None:
            release = ctypes.pythonapi.PyBuffer_Release
            release.argtypes = [ctypes.POINTER(_PyBuffer)]
            release.restype = None
            release(ctypes.byref(self._view))
            self._view = None


def _export_address(mm: mmap.mmap, writable: bool):
    """Returns (address of the mapping, object to drop before mm.close()).

    While the export lives, mm.close() refuses to unmap, so the address can
    not dangle by accident."""
    if writable:
        anchor = ctypes.c_char.from_buffer(mm)
        return ctypes.addressof(anchor), anchor
    export = _ReadOnlyExport(mm)
    return export.address, export


class _Segment:
    """One open, mapped and validated segment, with its geometry copied once."""

    def __init__(self, name: str, path: str) -> None:
        self.fd = -1
        self.mm = None
        self._export = None
        self.addr = 0
        try:
            self._open(name, path)
        except BaseException:
            self.close()
            raise

    def _open(self, name: str, path: str) -> None:
        flags = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        self.writable = True
        try:
            try:
                self.fd = os.open(path, os.O_RDWR | flags)
            except PermissionError:
                # A ring shared with our group read-only: still readable, just
                # without a reader-table entry or a `waiters` count.
                self.fd = os.open(path, os.O_RDONLY | flags)
                self.writable = False
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT, "no devplane ring %r (is its writer running?)" % name, path
            ) from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise RingError("%s is a symbolic link; a ring is never one, refusing it" % path) from None
            if e.errno == errno.EISDIR:
                raise RingError("%s is not a regular file" % path) from None
            raise
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            raise RingError("%s is not a regular file" % path)
        self.dev, self.ino = st.st_dev, st.st_ino
        self.size = st.st_size
        if self.size < HEADER_SIZE:
            raise RingNotReady(
                "%s is %d bytes, smaller than a ring header (not ready or not a ring)" % (path, self.size)
            )
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if self.writable else 0)
        try:
            self.mm = mmap.mmap(self.fd, self.size, mmap.MAP_SHARED, prot)
        except (OSError, ValueError, OverflowError) as e:
            raise RingError("cannot map %s (%d bytes): %s" % (path, self.size, e)) from None
        self.addr, self._export = _export_address(self.mm, self.writable)
        if self.mm[0:8] == b"\0" * 8:
            # The writer stores the magic last: this is a ring being made.
            raise RingNotReady("ring %s is still being created" % path)
        (
            self.slot_count,
            self.slot_size,
            self.slot_stride,
        ) = _validate_header(self.mm, self.size, path)

    def close(self) -> None:
        if self._export is not None:
            release = getattr(self._export, "release", None)
            if release is not None:
                release()
            self._export = None
        self.addr = 0
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # Live header fields, read once each time they are needed.
    def load32(self, off: int) -> int:
        return _load32(self.addr + off)

    def load64(self, off: int) -> int:
        return _load64(self.addr + off)

    def content_type(self) -> str:
        raw = self.mm[_OFF_CONTENT_TYPE : _OFF_CONTENT_TYPE + CONTENT_TYPE_CAPACITY]
        end = raw.find(b"\0")
        # Validated at open to hold a NUL; a writer may have rewritten it since.
        raw = raw[: end if end >= 0 else CONTENT_TYPE_CAPACITY - 1]
        return raw.decode("utf-8", "replace")


def _validate_header(mm: mmap.mmap, mapped: int, path: str):
    """Checks every header field against the mapped size; returns the geometry."""
    if mapped < HEADER_SIZE:
        raise RingError("%s is %d bytes, smaller than a ring header" % (path, mapped))
    (
        magic,
        version,
        header_size,
        slot_count,
        slot_header_size,
        slot_size,
        slot_stride,
        total_size,
        _writer_pid,
        _generation,
        _write_seq,
        _futex_word,
        _waiters,
        _flags,
        reader_capacity,
        _created_ns,
        content_type_len,
    ) = _HEADER.unpack_from(mm, 0)
    where = "corrupt ring header in %s" % path
    if magic != MAGIC:
        raise RingError("%s is not a devplane ring (bad magic)" % path)
    if version != VERSION:
        raise RingError(
            "%s: ring format version %d is not supported (this reader knows %d)" % (path, version, VERSION)
        )
    if header_size != HEADER_SIZE or slot_header_size != SLOT_HEADER_SIZE:
        raise RingError("%s: header_size %d, slot_header_size %d" % (where, header_size, slot_header_size))
    if not 1 <= slot_count <= MAX_SLOTS:
        raise RingError("%s: slot_count %d (1 to %d allowed)" % (where, slot_count, MAX_SLOTS))
    if (
        slot_size == 0
        or slot_size > _MAX_SLOT_SIZE
        or slot_stride < slot_header_size + slot_size
        or slot_stride % 4096 != 0
        or slot_stride > _MAX_SLOT_STRIDE
    ):
        raise RingError("%s: slot_size %d, slot_stride %d" % (where, slot_size, slot_stride))
    need = header_size + slot_count * slot_stride
    if total_size != need or need > mapped:
        raise RingError(
            "%s: total_size %d, layout needs %d, segment has %d" % (where, total_size, need, mapped)
        )
    content_type = mm[_OFF_CONTENT_TYPE : _OFF_CONTENT_TYPE + CONTENT_TYPE_CAPACITY]
    if content_type_len >= CONTENT_TYPE_CAPACITY or b"\0" not in content_type:
        raise RingError("%s: content type is not terminated (content_type_len %d)" % (where, content_type_len))
    if reader_capacity != READER_CAPACITY:
        raise RingError("%s: reader_capacity %d" % (where, reader_capacity))
    return slot_count, slot_size, slot_stride


# ---- caps and numpy ----


def _split_outside_quotes(text: str, sep: str):
    parts, cur, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_caps(caps: str):
    """Splits a GStreamer caps string into (media_type, {field: value}).

    Only the first structure is used. Integer values become ints, quoted
    strings lose their quotes and "(type)" annotations are dropped; anything
    else (fractions, ranges, lists) stays a string.
    """
    caps = (caps or "").strip()
    first = _split_outside_quotes(caps, ";")[0]
    parts = _split_outside_quotes(first, ",")
    media = parts[0].strip()
    # "video/x-raw(memory:DMABuf)": the features do not change the layout.
    paren = media.find("(")
    if paren >= 0:
        media = media[:paren]
    fields = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if not eq:
            continue
        value = value.strip()
        m = re.match(r"\(\s*[A-Za-z0-9_]+\s*\)\s*", value)
        if m:
            value = value[m.end() :]
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif re.fullmatch(r"[+-]?\d+", value):
            value = int(value)
        fields[key.strip()] = value
    return media.strip().lower(), fields


# format: (numpy dtype, bytes per pixel, channels; None for a 2-D array)
_VIDEO_FORMATS = {
    "GRAY8": ("u1", 1, None),
    "GRAY16_LE": ("<u2", 2, None),
    "GRAY16_BE": (">u2", 2, None),
    "RGB": ("u1", 3, 3),
    "BGR": ("u1", 3, 3),
    "RGBA": ("u1", 4, 4),
    "BGRA": ("u1", 4, 4),
    "ARGB": ("u1", 4, 4),
    "ABGR": ("u1", 4, 4),
    "RGBx": ("u1", 4, 4),
    "BGRx": ("u1", 4, 4),
    "xRGB": ("u1", 4, 4),
    "xBGR": ("u1", 4, 4),
    # Packed 4:2:2, two bytes a pixel: (height, width, 2) is the layout
    # OpenCV's COLOR_YUV2BGR_YUY2 and friends expect.
    "YUY2": ("u1", 2, 2),
    "YVYU": ("u1", 2, 2),
    "UYVY": ("u1", 2, 2),
}

_AUDIO_FORMATS = {
    "U8": "u1",
    "S8": "i1",
    "S16LE": "<i2",
    "S16BE": ">i2",
    "U16LE": "<u2",
    "U16BE": ">u2",
    "S32LE": "<i4",
    "S32BE": ">i4",
    "U32LE": "<u4",
    "U32BE": ">u4",
    "F32LE": "<f4",
    "F32BE": ">f4",
    "F64LE": "<f8",
    "F64BE": ">f8",
}


def _import_numpy():
    try:
        import numpy
    except ImportError as e:
        raise ImportError(
            "Frame.numpy() and Frame.array need numpy, which is not installed "
            "(pip install numpy); Frame.data holds the same bytes"
        ) from e
    return numpy


def _positive_int(fields: dict, key: str):
    value = fields.get(key)
    return value if isinstance(value, int) and value > 0 else None


def _array_layout(content_type: str, nbytes: int):
    """(dtype, shape, strides or None) for a payload of this caps, or None."""
    media, fields = parse_caps(content_type)
    fmt = fields.get("format")
    if media == "video/x-raw" and isinstance(fmt, str) and fmt in _VIDEO_FORMATS:
        width, height = _positive_int(fields, "width"), _positive_int(fields, "height")
        if width is None or height is None:
            return None
        dtype, bpp, channels = _VIDEO_FORMATS[fmt]
        row = width * bpp
        stride = _positive_int(fields, "stride")
        if stride is None:
            # Caps without a stride: tightly packed, or GStreamer's default of
            # rows padded to 4 bytes, or whatever the size says rows are.
            padded = (row + 3) // 4 * 4
            if nbytes == height * row:
                stride = row
            elif nbytes == height * padded:
                stride = padded
            elif nbytes % height == 0 and nbytes // height >= row:
                stride = nbytes // height
            else:
                stride = row
        if stride < row:
            raise ValueError("caps %r: stride %d is smaller than a row of %d bytes" % (content_type, stride, row))
        need = stride * (height - 1) + row
        if nbytes < need:
            raise ValueError(
                "frame has %d bytes, but %dx%d %s with stride %d needs %d" % (nbytes, width, height, fmt, stride, need)
            )
        item = 2 if dtype.endswith("u2") else 1
        if channels is None:
            return dtype, (height, width), (stride, item)
        return dtype, (height, width, channels), (stride, bpp, item)
    if media == "audio/x-raw" and isinstance(fmt, str) and fmt in _AUDIO_FORMATS:
        dtype = _AUDIO_FORMATS[fmt]
        channels = _positive_int(fields, "channels") or 1
        item = int(dtype[-1])
        if nbytes % (item * channels) != 0:
            raise ValueError(
                "audio frame has %d bytes, not a whole number of %d-channel %s samples" % (nbytes, channels, fmt)
            )
        frames = nbytes // (item * channels)
        if fields.get("layout") == "non-interleaved":
            return dtype, (channels, frames), None
        return dtype, (frames, channels), None
    return None


class Frame:
    """One frame copied out of the ring."""

    __slots__ = ("data", "seq", "meta", "missed", "content_type", "realtime_ns", "monotonic_ns", "generation")

    def __init__(self, data, seq, meta, missed, content_type, realtime_ns, monotonic_ns, generation):
        self.data = data  # bytes: the payload
        self.seq = seq  # sequence number within its generation, from 1
        self.meta = meta  # dict from the frame's JSON metadata, {} when there is none
        self.missed = missed  # frames lost (overrun or skipped) since this reader's previous frame
        self.content_type = content_type  # caps string of the ring
        self.realtime_ns = realtime_ns  # CLOCK_REALTIME of the frame
        self.monotonic_ns = monotonic_ns  # CLOCK_MONOTONIC of the frame
        self.generation = generation  # writer generation the frame belongs to

    def numpy(self, dtype=None, shape=None):
        """A read-only numpy view of data (np.frombuffer, no copy).

        Without arguments the layout comes from the content type: raw video
        (GRAY8, GRAY16, RGB/BGR and 4-byte variants, YUY2/UYVY/YVYU) gives
        (height, width[, channels]), honouring the stride; raw audio gives
        (frames, channels). Anything else is a flat uint8 array. An explicit
        dtype and/or shape overrides the inference.
        """
        np = _import_numpy()
        nbytes = len(self.data)
        if dtype is None and shape is None:
            layout = _array_layout(self.content_type, nbytes)
            if layout is None:
                return np.frombuffer(self.data, dtype=np.uint8)
            dt, shp, strides = layout
            if strides is None:
                return np.frombuffer(self.data, dtype=np.dtype(dt)).reshape(shp)
            return np.ndarray(shape=shp, dtype=np.dtype(dt), buffer=self.data, strides=strides)
        if dtype is None:
            try:
                layout = _array_layout(self.content_type, nbytes)
            except ValueError:
                layout = None
            dtype = layout[0] if layout else np.uint8
        dt = np.dtype(dtype)
        if shape is None:
            return np.frombuffer(self.data, dtype=dt)
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(shape)
        count = -1
        if all(isinstance(n, int) and n >= 0 for n in shape):
            count = 1
            for n in shape:
                count *= n
            # A slot may carry padding after the described array.
            if count * dt.itemsize > nbytes:
                raise ValueError("frame has %d bytes, shape %r of %s needs %d" % (nbytes, shape, dt, count * dt.itemsize))
        return np.frombuffer(self.data, dtype=dt, count=count).reshape(shape)

    @property
    def array(self):
        """numpy() with the layout inferred from the content type."""
        return self.numpy()

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return "Frame(seq=%d, generation=%d, length=%d, missed=%d, content_type=%r)" % (
            self.seq,
            self.generation,
            len(self.data),
            self.missed,
            self.content_type,
        )


def _parse_meta(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


# ---- the reader ----


class Reader:
    """Reads frames from the ring /dev/shm/<name>.

    from_oldest: start with the oldest frame still in the ring instead of the
    next new one. register: take an entry in the ring's reader table so the
    writer can show this reader and how far behind it is.

    One thread at a time may read; open one Reader per thread. close() may
    come from any thread: a read() blocked in another one returns None within
    50 ms, and the ring is unmapped once it has.
    """

    def __init__(self, name: str, from_oldest: bool = False, *, register: bool = True) -> None:
        self._seg = None
        self._lock = threading.Lock()
        self._active = 0
        self._closing = False
        self._name = validate_name(name)
        self._path = os.path.join(SHM_DIR, name)
        self._register_wanted = register
        self._table_index = -1
        seg = _Segment(name, self._path)
        self._attach(seg)
        ws = seg.load64(_OFF_WRITE_SEQ)
        if from_oldest:
            nxt = ws - seg.slot_count + 2 if ws >= seg.slot_count else 1
            if nxt > ws > 0:
                nxt = ws
            self._next, self._last = nxt, nxt - 1
        else:
            self._next, self._last = ws + 1, ws
        self._register()

    def _attach(self, seg: _Segment) -> None:
        self._seg = seg
        self._generation = seg.load32(_OFF_GENERATION)
        self._content_type = seg.content_type()
        self._next_stat = time.monotonic() + _STAT_INTERVAL

    # -- public API --

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        return self._path

    @property
    def closed(self) -> bool:
        return self._seg is None or self._closing

    @property
    def generation(self) -> int:
        """The writer generation this reader follows."""
        return self._generation

    @property
    def content_type(self) -> str:
        """The ring's caps string, as the header says now."""
        with self._using() as seg:
            return seg.content_type()

    @property
    def slot_count(self) -> int:
        with self._using() as seg:
            return seg.slot_count

    @property
    def slot_size(self) -> int:
        with self._using() as seg:
            return seg.slot_size

    @property
    def writable(self) -> bool:
        """False when the ring could only be opened read-only (no table entry)."""
        with self._using() as seg:
            return seg.writable

    @property
    def table_index(self):
        """Our entry in the reader table, or None when not registered."""
        return self._table_index if self._table_index >= 0 else None

    def writer_alive(self) -> bool:
        """True when a live process is writing this ring."""
        with self._using() as seg:
            return _pid_alive(seg.load32(_OFF_WRITER_PID))

    def read(self, timeout=None):
        """The next frame, or None if none arrives within `timeout` seconds.

        timeout=None waits forever, 0 does not wait. A reader that fell
        behind skips ahead (halfway through the held frames) and says how many it lost
        in Frame.missed. A new writer generation restarts at its frame 1; a
        segment replaced under the same name is reopened transparently.
        """
        with self._using():
            return self._read(timeout)

    def _read(self, timeout):
        deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        spins = 0
        poll = _POLL_MIN
        while True:
            if self._closing:
                return None  # closed from another thread
            seg = self._seg
            self._check_generation()
            # futex before write_seq: a commit in between changes futex, so
            # the wait below returns at once instead of missing the frame.
            fx = seg.load32(_OFF_FUTEX)
            ws = seg.load64(_OFF_WRITE_SEQ)
            if ws >= self._next:
                # The slot of ws+1 (the one being written next) is that of
                # ws+1-slot_count, so that frame is no longer safe to read.
                oldest = ws - seg.slot_count + 2 if ws >= seg.slot_count else 1
                if oldest > ws:
                    oldest = ws
                if self._next < oldest:
                    # Overrun: resume halfway through the held frames, not at
                    # the oldest, which the writer overwrites next (a reader
                    # copying large frames would lose that race every time).
                    self._next = max(oldest, ws - (seg.slot_count - 1) // 2)
                got = self._copy(self._next)
                if got is not None:
                    if self._check_generation():
                        continue  # the copy may belong to the old generation
                    missed = self._next - self._last - 1
                    self._last = self._next
                    self._next += 1
                    self._heartbeat(missed)
                    return self._frame(self._last, got, missed)
                if self._slot_is_newer(self._next) and self._next < ws:
                    # The slot belongs to a newer frame (committed, or queued
                    # for one: a zero-copy writer marks slots ahead of
                    # write_seq), so this frame is gone; try the next.
                    self._next += 1
                    continue
                spins += 1
                if spins > _MAX_SPINS:
                    raise RingError("%s: ring never settles: slot states disagree with write_seq" % self._path)
                continue
            if ws + 1 < self._next:
                # write_seq went back without a generation change: only a
                # broken writer does that; follow it rather than wait forever.
                self._next, self._last = ws + 1, ws
            if self._maybe_reopen():
                continue
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self._heartbeat(0)
                return None
            left = None if deadline is None else deadline - now
            timed_out, poll = self._wait(fx, left, poll)
            if timed_out:
                self._heartbeat(0)

    def latest(self):
        """The newest frame without waiting (None when there is none yet).

        The next read() continues after it.
        """
        with self._using():
            return self._latest()

    def _latest(self):
        self._maybe_reopen()
        for _ in range(_MAX_SPINS):
            self._check_generation()
            ws = self._seg.load64(_OFF_WRITE_SEQ)
            if ws == 0:
                return None
            got = self._copy(ws)
            if got is None:
                continue
            if self._check_generation():
                continue
            missed = ws - self._last - 1 if ws > self._last else 0
            self._last, self._next = ws, ws + 1
            self._heartbeat(missed)
            return self._frame(ws, got, missed)
        raise RingError("%s: ring never settles: slot states disagree with write_seq" % self._path)

    def info(self) -> dict:
        """The header and the reader table, as plain values."""
        with self._using() as seg:
            return self._info(seg)

    def _info(self, seg: _Segment) -> dict:
        (
            _magic,
            version,
            header_size,
            slot_count,
            _slot_header_size,
            slot_size,
            slot_stride,
            total_size,
            writer_pid,
            generation,
            write_seq,
            futex_word,
            waiters,
            flags,
            reader_capacity,
            created_ns,
            _ct_len,
        ) = _HEADER.unpack_from(seg.mm, 0)
        now = time.monotonic_ns()
        readers = []
        for i in range(READER_CAPACITY):
            pid, gen, last_seq, heartbeat_ns, missed = _ENTRY.unpack_from(seg.mm, _OFF_READERS + i * READER_ENTRY_SIZE)
            if pid == 0:
                continue
            readers.append(
                {
                    "index": i,
                    "pid": pid,
                    "alive": _pid_alive(pid),
                    "generation": gen,
                    "last_seq": last_seq,
                    "behind": write_seq - last_seq if gen == generation and write_seq >= last_seq else None,
                    "heartbeat_ns": heartbeat_ns,
                    "heartbeat_age_s": round((now - heartbeat_ns) / 1e9, 3) if 0 < heartbeat_ns <= now else None,
                    "missed": missed,
                    "self": pid == os.getpid() and i == self._table_index,
                }
            )
        return {
            "name": self._name,
            "path": self._path,
            "file_size": seg.size,
            "version": version,
            "header_size": header_size,
            "slot_count": slot_count,
            "slot_size": slot_size,
            "slot_stride": slot_stride,
            "total_size": total_size,
            "writer_pid": writer_pid,
            "writer_alive": _pid_alive(writer_pid),
            "generation": generation,
            "write_seq": write_seq,
            "futex": futex_word,
            "waiters": waiters,
            "flags": flags,
            "writer_closed": bool(flags & FLAG_WRITER_CLOSED),
            "replaced": bool(flags & FLAG_REPLACED),
            "created_ns": created_ns,
            "content_type": seg.content_type(),
            "reader_capacity": reader_capacity,
            "readers": readers,
        }

    def close(self) -> None:
        """Releases the reader-table entry and unmaps the ring. Idempotent."""
        with self._lock:
            if self._seg is None:
                return
            self._closing = True
            if self._active:
                return  # the thread inside read() finishes the close
            self._close_now()

    def _close_now(self) -> None:
        seg, self._seg = self._seg, None
        self._unregister(seg)
        seg.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self):
        """Frames forever (read() without a timeout)."""
        while True:
            yield self.read()

    def __del__(self) -> None:
        # Free the table entry of a reader that was never closed; the writer
        # would free it once we exit anyway, but not while we live.
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._seg is None else "generation %d, next %d" % (self._generation, self._next)
        return "Reader(%r, %s)" % (self._name, state)

    # -- internals --

    @contextlib.contextmanager
    def _using(self):
        # Counts the calls that use the mapping, so that a close() from another
        # thread never unmaps memory one of them is about to touch.
        with self._lock:
            if self._seg is None or self._closing:
                raise ValueError("operation on a closed Reader")
            self._active += 1
        try:
            yield self._seg
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0 and self._closing and self._seg is not None:
                    self._close_now()

    def _check_generation(self) -> bool:
        gen = self._seg.load32(_OFF_GENERATION)
        if gen == self._generation:
            return False
        # A new writer restarted the sequence: follow it from its first frame.
        self._generation = gen
        self._next, self._last = 1, 0
        self._content_type = self._seg.content_type()
        return True

    def _slot_is_newer(self, seq: int) -> bool:
        seg = self._seg
        return (_load64(seg.addr + HEADER_SIZE + (seq % seg.slot_count) * seg.slot_stride) >> 1) > seq

    def _copy(self, seq: int):
        """(data, meta, realtime_ns, monotonic_ns) of frame seq, or None when
        its slot holds another frame (overwritten, or not written yet)."""
        seg = self._seg
        off = HEADER_SIZE + (seq % seg.slot_count) * seg.slot_stride
        state_addr = seg.addr + off
        s1 = _load64(state_addr)
        if s1 != 2 * seq:
            return None
        _, length, realtime_ns, monotonic_ns, meta_len = _SLOT.unpack_from(seg.mm, off)
        if length > seg.slot_size or meta_len > META_CAPACITY:
            # A committed slot never holds these; re-check so that a torn read
            # is not mistaken for corruption.
            if _load64(state_addr) != s1:
                return None
            raise RingError(
                "%s: corrupt slot: frame %d has length %d (slot holds %d), metadata %d bytes (at most %d)"
                % (self._path, seq, length, seg.slot_size, meta_len, META_CAPACITY)
            )
        payload = off + SLOT_HEADER_SIZE
        data = seg.mm[payload : payload + length]
        meta = seg.mm[off + SLOT_FIXED : off + SLOT_FIXED + meta_len]
        if _load64(state_addr) != s1:
            return None  # torn: the writer came round while we copied
        return data, meta, realtime_ns, monotonic_ns

    def _frame(self, seq: int, got, missed: int) -> Frame:
        data, meta, realtime_ns, monotonic_ns = got
        # Read per frame: a writer may set the caps with its first frame
        # (shm-publish derives them from msg.frame), after readers attached.
        self._content_type = self._seg.content_type()
        return Frame(
            data, seq, _parse_meta(meta), missed, self._content_type, realtime_ns, monotonic_ns, self._generation
        )

    def _wait(self, fx: int, left, poll: float):
        """Sleeps until futex moves from fx, a slice passes, or `left` runs
        out. Returns (timed_out, next poll interval)."""
        global _FUTEX
        seg = self._seg
        futex = _futex()
        if futex is not None:
            span = _WAIT_SLICE if left is None else min(left, _WAIT_SLICE)
            waiters = seg.addr + _OFF_WAITERS
            atomics = _atomics()
            # A read-only mapping can not announce itself, so the writer may
            # skip the wake-up; the slice bounds how late we notice.
            if seg.writable:
                atomics.add32(waiters, 1)
            try:
                err = futex.wait(seg.addr + _OFF_FUTEX, fx, span)
            finally:
                if seg.writable:
                    atomics.add32(waiters, -1)
            if err in (0, errno.EAGAIN, errno.EINTR):
                return False, poll
            if err == errno.ETIMEDOUT:
                return True, poll
            if err in (errno.ENOSYS, errno.EPERM):
                # Refused (seccomp, emulation): poll from now on.
                _FUTEX = False
                return False, poll
            raise OSError(err, "futex wait on %s failed: %s" % (self._path, os.strerror(err)))
        span = poll if left is None else min(left, poll)
        time.sleep(span)
        return True, min(poll * 2, _POLL_MAX)

    def _maybe_reopen(self) -> bool:
        """Reopens the name when the mapped segment has been replaced."""
        seg = self._seg
        replaced = seg.load32(_OFF_FLAGS) & FLAG_REPLACED
        now = time.monotonic()
        if not replaced and now < self._next_stat:
            return False
        self._next_stat = now + _STAT_INTERVAL
        try:
            st = os.stat(self._path, follow_symlinks=False)
        except FileNotFoundError:
            return False  # gone: wait for the next writer to create it
        if (st.st_dev, st.st_ino) == (seg.dev, seg.ino):
            return False  # REPLACED set but the successor is not linked in yet
        try:
            new = _Segment(self._name, self._path)
        except (FileNotFoundError, RingNotReady):
            return False  # try again at the next check
        self._unregister(seg)
        seg.close()
        self._attach(new)
        # A new segment is a new stream: take it from its first frame (the
        # overrun rule moves us up to the oldest one still held).
        self._next, self._last = 1, 0
        self._register()
        return True

    def _entry_addr(self, index: int) -> int:
        return self._seg.addr + _OFF_READERS + index * READER_ENTRY_SIZE

    def _register(self) -> None:
        self._table_index = -1
        seg = self._seg
        if not self._register_wanted or seg is None or not seg.writable:
            return
        atomics = _atomics()
        for reclaim in (False, True):
            # First free entries; then entries of readers that died without
            # closing (their pid no longer exists).
            for i in range(READER_CAPACITY):
                addr = self._entry_addr(i)
                cur = _load32(addr)
                if reclaim:
                    if cur == 0 or _pid_alive(cur):
                        continue
                elif cur != 0:
                    continue
                if atomics.cas32(addr, cur, os.getpid()):
                    _store32(addr + 4, self._generation)
                    _store64(addr + 8, self._last)
                    _store64(addr + 24, 0)
                    _store64(addr + 16, time.monotonic_ns())
                    self._table_index = i
                    return

    def _heartbeat(self, missed: int) -> None:
        if self._table_index < 0:
            return
        addr = self._entry_addr(self._table_index)
        if _load32(addr) != os.getpid():
            # The writer freed our entry (it took us for dead) or another
            # reader won a race for it: take a new one.
            self._register()
            if self._table_index < 0:
                return
            addr = self._entry_addr(self._table_index)
        _store32(addr + 4, self._generation)
        _store64(addr + 8, self._last)
        if missed:
            _store64(addr + 24, _load64(addr + 24) + missed)
        _store64(addr + 16, time.monotonic_ns())

    def _unregister(self, seg: _Segment) -> None:
        index, self._table_index = self._table_index, -1
        if index < 0 or not seg.writable or seg.addr == 0:
            return
        addr = seg.addr + _OFF_READERS + index * READER_ENTRY_SIZE
        # Only our own pid: after a fork the child must not free the parent's entry.
        _atomics().cas32(addr, os.getpid(), 0)


# ---- command line ----

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


def _open_waiting(name: str, from_oldest: bool, timeout):
    """Opens the ring, waiting up to `timeout` for it to appear. None on timeout."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    announced = False
    while True:
        try:
            # A reader that had to wait for the ring was there before its
            # first frame, so it starts with the oldest one.
            return Reader(name, from_oldest=from_oldest or announced)
        except (FileNotFoundError, RingNotReady) as e:
            if deadline is not None and time.monotonic() >= deadline:
                print("devplane_shm: timeout: %s" % e, file=sys.stderr)
                return None
            if not announced:
                print("devplane_shm: waiting for %s: %s" % (os.path.join(SHM_DIR, name), e), file=sys.stderr)
                announced = True
            time.sleep(0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic())))


def _frame_record(frame: Frame) -> dict:
    return {
        "seq": frame.seq,
        "missed": frame.missed,
        "length": len(frame.data),
        "sha256": hashlib.sha256(frame.data).hexdigest(),
        "meta": frame.meta,
        "content_type": frame.content_type,
        "realtime_ns": frame.realtime_ns,
        "monotonic_ns": frame.monotonic_ns,
        "generation": frame.generation,
    }


def _cmd_read(args) -> int:
    reader = _open_waiting(args.name, args.from_oldest, args.timeout)
    if reader is None:
        return EXIT_TIMEOUT
    with reader:
        count = 0
        while args.count is None or count < args.count:
            frame = reader.read(timeout=args.timeout)
            if frame is None:
                print("devplane_shm: timeout: no frame within %gs" % args.timeout, file=sys.stderr)
                return EXIT_TIMEOUT
            sys.stdout.write(json.dumps(_frame_record(frame)) + "\n")
            sys.stdout.flush()
            count += 1
    return EXIT_OK


def _cmd_info(args) -> int:
    with Reader(args.name, register=False) as reader:
        sys.stdout.write(json.dumps(reader.info(), indent=2) + "\n")
        sys.stdout.flush()
    return EXIT_OK


def _non_negative(kind):
    def parse(text):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError("must not be negative")
        return value

    return parse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="devplane_shm.py", description="Read a devplane shared-memory ring.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_read = sub.add_parser("read", help="print one JSON line per frame")
    p_read.add_argument("name")
    p_read.add_argument("--count", type=_non_negative(int), default=None, help="exit 0 after N frames")
    p_read.add_argument(
        "--timeout",
        type=_non_negative(float),
        default=None,
        help="seconds to wait for each frame (and for the ring to appear); exit 3 when it passes",
    )
    p_read.add_argument("--from-oldest", action="store_true", help="start with the oldest frame still held")
    p_read.add_argument("--json", action="store_true", help="JSON lines (the only output format; accepted for clarity)")
    p_info = sub.add_parser("info", help="print the header and reader table as JSON")
    p_info.add_argument("name")
    args = parser.parse_args(argv)
    try:
        validate_name(args.name)
        if args.command == "read":
            return _cmd_read(args)
        return _cmd_info(args)
    except ValueError as e:
        print("devplane_shm: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The consumer (head, a closed pipe) went away: not an error. Point
        # stdout at /dev/null so the flush at exit does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (RingError, OSError) as e:
        print("devplane_shm: error: %s" % e, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
