/*
 * devplane shared-memory ring: the segment layout and a reader.
 *
 * Include this header from any C (C99 or later) or C++ program to read the
 * frames a devplane writer (the shm-publish node, a capture node, or another
 * program) puts in /dev/shm/<name>. docs/shm-format.md is the contract this
 * header implements; the offsets below are checked against it at compile time.
 *
 * Linux only (futex). GCC or Clang (atomic builtins).
 */
#ifndef DEVPLANE_SHM_RING_H
#define DEVPLANE_SHM_RING_H

/* clock_gettime, kill and syscall need POSIX/GNU declarations, which strict
   -std=c99/c11 hides. This works when the header comes before other system
   headers; otherwise compile with -D_GNU_SOURCE. */
#if !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DP_RING_MAGIC "DVPRING\0"
#define DP_RING_VERSION 1u
#define DP_RING_HEADER_SIZE 4096u
#define DP_RING_SLOT_HEADER_SIZE 4096u
#define DP_RING_SLOT_FIXED 64u
#define DP_RING_META_CAPACITY (DP_RING_SLOT_HEADER_SIZE - DP_RING_SLOT_FIXED)
#define DP_RING_CONTENT_TYPE_CAPACITY 256u
#define DP_RING_READER_CAPACITY 32u
#define DP_RING_MAX_SLOTS 4096u
#define DP_RING_NAME_MAX 200u
#define DP_RING_DIR "/dev/shm/"

/* header.flags */
#define DP_RING_FLAG_WRITER_CLOSED 1u /* the writer closed the ring cleanly */
#define DP_RING_FLAG_REPLACED 2u      /* a new segment under the same name replaces this one */

typedef struct dp_ring_reader_entry {
  uint32_t pid;        /* 0: free */
  uint32_t generation; /* generation the reader follows */
  uint64_t last_seq;   /* last frame it read */
  uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of its last read or wait */
  uint64_t missed;     /* frames it lost to overruns, in total */
} dp_ring_reader_entry;

typedef struct dp_ring_header {
  char magic[8];              /* 0   "DVPRING\0" */
  uint32_t version;           /* 8   DP_RING_VERSION */
  uint32_t header_size;       /* 12  offset of slot 0 */
  uint32_t slot_count;        /* 16 */
  uint32_t slot_header_size;  /* 20  offset of the payload inside a slot */
  uint64_t slot_size;         /* 24  payload capacity of one slot */
  uint64_t slot_stride;       /* 32  distance between slots */
  uint64_t total_size;        /* 40  size of the whole segment */
  uint32_t writer_pid;        /* 48  0: no writer */
  uint32_t generation;        /* 52  bumped when a writer takes over the ring */
  uint64_t write_seq;         /* 56  sequence of the last committed frame, 0: none yet */
  uint32_t futex;             /* 64  bumped after every commit; readers FUTEX_WAIT on it */
  uint32_t waiters;           /* 68  readers blocked in FUTEX_WAIT */
  uint32_t flags;             /* 72  DP_RING_FLAG_* */
  uint32_t reader_capacity;   /* 76  entries in the reader table */
  uint64_t created_ns;        /* 80  CLOCK_REALTIME when this generation started */
  uint32_t content_type_len;  /* 88  bytes in content_type, without the NUL */
  uint32_t reserved0;         /* 92 */
  uint8_t reserved1[32];      /* 96 */
  char content_type[DP_RING_CONTENT_TYPE_CAPACITY]; /* 128 NUL-terminated caps string */
  dp_ring_reader_entry readers[DP_RING_READER_CAPACITY]; /* 384 */
} dp_ring_header;

typedef struct dp_ring_slot {
  uint64_t state;        /* 0   seqlock: 2n+1 while frame n is written, 2n once committed */
  uint64_t length;       /* 8   payload bytes */
  uint64_t realtime_ns;  /* 16  CLOCK_REALTIME of the frame */
  uint64_t monotonic_ns; /* 24  CLOCK_MONOTONIC of the frame */
  uint32_t meta_len;     /* 32  bytes of metadata */
  uint32_t flags;        /* 36  reserved, 0 */
  uint64_t seq;          /* 40  n, for convenience */
  uint8_t reserved[16];  /* 48 */
  char meta[DP_RING_META_CAPACITY]; /* 64 UTF-8 JSON object */
} dp_ring_slot;

#ifdef __cplusplus
#define DP_RING_STATIC_ASSERT static_assert
#else
#define DP_RING_STATIC_ASSERT _Static_assert
#endif
DP_RING_STATIC_ASSERT(sizeof(dp_ring_reader_entry) == 32, "reader entry is 32 bytes");
DP_RING_STATIC_ASSERT(offsetof(dp_ring_header, write_seq) == 56, "write_seq at 56");
DP_RING_STATIC_ASSERT(offsetof(dp_ring_header, futex) == 64, "futex at 64");
DP_RING_STATIC_ASSERT(offsetof(dp_ring_header, content_type) == 128, "content_type at 128");
DP_RING_STATIC_ASSERT(offsetof(dp_ring_header, readers) == 384, "readers at 384");
DP_RING_STATIC_ASSERT(sizeof(dp_ring_header) <= DP_RING_HEADER_SIZE, "header fits its page");
DP_RING_STATIC_ASSERT(offsetof(dp_ring_slot, meta) == 64, "meta at 64");
DP_RING_STATIC_ASSERT(sizeof(dp_ring_slot) == DP_RING_SLOT_HEADER_SIZE, "slot header is one page");

/* ---- small helpers shared by readers and writers ---- */

static inline uint64_t dp_ring_clock_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 1 when name is 1..200 of [A-Za-z0-9._-] and not "." or "..". */
static inline int dp_ring_name_valid(const char *name) {
  size_t n = 0;
  if (!name) return 0;
  for (; name[n]; n++) {
    char c = name[n];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    if (!ok || n >= DP_RING_NAME_MAX) return 0;
  }
  if (n == 0) return 0;
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return 0;
  return 1;
}

static inline uint64_t dp_ring_round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

static inline dp_ring_slot *dp_ring_slot_at(void *base, uint32_t header_size, uint64_t stride,
                                            uint32_t slot_count, uint64_t seq) {
  return (dp_ring_slot *)((char *)base + header_size + (seq % slot_count) * stride);
}

static inline long dp_ring_futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
  /* Not FUTEX_PRIVATE: waiter and waker live in different processes. */
  return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* 1 when pid names a live process (EPERM means alive, just not ours). */
static inline int dp_ring_pid_alive(uint32_t pid) {
  if (pid == 0) return 0;
  if (kill((pid_t)pid, 0) == 0) return 1;
  return errno == EPERM;
}

/* Checks every header field against the mapped size. Returns 0, or -1 with a sentence in err. */
static inline int dp_ring_validate_header(const void *base, uint64_t mapped, char *err, size_t errlen) {
  const dp_ring_header *h = (const dp_ring_header *)base;
  if (mapped < DP_RING_HEADER_SIZE) {
    snprintf(err, errlen, "segment is %llu bytes, smaller than a ring header", (unsigned long long)mapped);
    return -1;
  }
  if (memcmp(h->magic, DP_RING_MAGIC, 8) != 0) {
    snprintf(err, errlen, "not a devplane ring (bad magic)");
    return -1;
  }
  if (h->version != DP_RING_VERSION) {
    snprintf(err, errlen, "ring format version %u is not supported (this reader knows %u)", h->version,
             DP_RING_VERSION);
    return -1;
  }
  if (h->header_size != DP_RING_HEADER_SIZE || h->slot_header_size != DP_RING_SLOT_HEADER_SIZE) {
    snprintf(err, errlen, "corrupt ring header: header_size %u, slot_header_size %u", h->header_size,
             h->slot_header_size);
    return -1;
  }
  if (h->slot_count == 0 || h->slot_count > DP_RING_MAX_SLOTS) {
    snprintf(err, errlen, "corrupt ring header: slot_count %u", h->slot_count);
    return -1;
  }
  if (h->slot_size == 0 || h->slot_size > (1ull << 40) ||
      h->slot_stride < (uint64_t)h->slot_header_size + h->slot_size || h->slot_stride % 4096 != 0 ||
      h->slot_stride > (1ull << 41)) {
    snprintf(err, errlen, "corrupt ring header: slot_size %llu, slot_stride %llu",
             (unsigned long long)h->slot_size, (unsigned long long)h->slot_stride);
    return -1;
  }
  uint64_t need = (uint64_t)h->header_size + (uint64_t)h->slot_count * h->slot_stride;
  if (h->total_size != need || need > mapped) {
    snprintf(err, errlen, "corrupt ring header: total_size %llu, layout needs %llu, segment has %llu",
             (unsigned long long)h->total_size, (unsigned long long)need, (unsigned long long)mapped);
    return -1;
  }
  if (h->content_type_len >= DP_RING_CONTENT_TYPE_CAPACITY ||
      memchr(h->content_type, 0, DP_RING_CONTENT_TYPE_CAPACITY) == NULL) {
    snprintf(err, errlen, "corrupt ring header: content type is not terminated");
    return -1;
  }
  if (h->reader_capacity != DP_RING_READER_CAPACITY) {
    snprintf(err, errlen, "corrupt ring header: reader_capacity %u", h->reader_capacity);
    return -1;
  }
  return 0;
}

/* ---- reader ---- */

enum {
  DP_RING_OK = 1,           /* a frame was read */
  DP_RING_TIMEOUT = 0,      /* no new frame before the timeout */
  DP_RING_E_CORRUPT = -1,   /* the segment breaks the format; see err */
  DP_RING_E_REPLACED = -2,  /* a new segment replaced this one: close and open again */
  DP_RING_E_TOO_SMALL = -3, /* the frame does not fit the buffer; info->length says how big it is */
  DP_RING_E_SYSTEM = -4     /* a system call failed; see err */
};

#define DP_RING_FROM_OLDEST 1 /* dp_ring_open flag: start with the oldest frame still in the ring */

typedef struct dp_ring_reader {
  int fd;
  void *base;
  uint64_t mapped;
  dp_ring_header *hdr;
  /* Geometry copied at open: a hostile writer may change the header later,
     but offsets are always computed from these validated values. */
  uint32_t slot_count;
  uint64_t slot_size;
  uint64_t slot_stride;
  uint32_t generation;
  uint64_t next;     /* next sequence to read */
  uint64_t last;     /* last sequence delivered, 0: none */
  int table_index;   /* our entry in the reader table, -1: none */
  dev_t dev;
  ino_t ino;
  /* Optional: when it points at a non-zero int, a waiting dp_ring_read returns
     DP_RING_TIMEOUT as soon as the futex is woken (a thread's stop request). */
  const volatile int *cancel;
  /* Optional low-latency waiting (dp_ring_set_spin): the window in ns around
     the expected next frame during which the reader polls instead of
     sleeping, and what it learnt of the writer's pace. */
  uint64_t spin_ns;
  uint64_t pace_period_ns;  /* capture interval, from consecutive frames' monotonic_ns */
  uint64_t pace_delay_ns;   /* capture time to readable here, the low end of what was seen */
  uint64_t pace_last_mono;  /* monotonic_ns of the last frame delivered */
  uint64_t pace_arrived_ns; /* when a wait ended with a frame there, for the next delivery to learn from */
  char path[sizeof(DP_RING_DIR) + DP_RING_NAME_MAX + 1];
  char err[512];
} dp_ring_reader;

typedef struct dp_ring_frame_info {
  uint64_t seq;
  uint64_t length;
  uint64_t realtime_ns;
  uint64_t monotonic_ns;
  uint64_t missed;     /* frames lost since the previous frame this reader got */
  uint32_t generation;
  uint32_t meta_len;
  int resynced;        /* 1 when a writer change reset the sequence before this frame */
} dp_ring_frame_info;

static inline void dp_ring_reader_register(dp_ring_reader *r) {
  uint32_t me = (uint32_t)getpid();
  r->table_index = -1;
  for (int pass = 0; pass < 2 && r->table_index < 0; pass++) {
    for (uint32_t i = 0; i < DP_RING_READER_CAPACITY; i++) {
      dp_ring_reader_entry *e = &r->hdr->readers[i];
      uint32_t cur = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
      /* First pass takes free entries; the second reclaims entries of dead readers. */
      if (pass == 0 ? cur != 0 : (cur == 0 || dp_ring_pid_alive(cur))) continue;
      if (__atomic_compare_exchange_n(&e->pid, &cur, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&e->generation, r->generation, __ATOMIC_RELAXED);
        __atomic_store_n(&e->last_seq, r->last, __ATOMIC_RELAXED);
        __atomic_store_n(&e->missed, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&e->heartbeat_ns, dp_ring_clock_ns(CLOCK_MONOTONIC), __ATOMIC_RELEASE);
        r->table_index = (int)i;
        break;
      }
    }
  }
}

static inline void dp_ring_reader_heartbeat(dp_ring_reader *r, uint64_t missed) {
  if (r->table_index < 0) return;
  dp_ring_reader_entry *e = &r->hdr->readers[r->table_index];
  if (__atomic_load_n(&e->pid, __ATOMIC_RELAXED) != (uint32_t)getpid()) {
    /* The writer reclaimed our entry (it thought we were gone): take a new one. */
    dp_ring_reader_register(r);
    if (r->table_index < 0) return;
    e = &r->hdr->readers[r->table_index];
  }
  __atomic_store_n(&e->generation, r->generation, __ATOMIC_RELAXED);
  __atomic_store_n(&e->last_seq, r->last, __ATOMIC_RELAXED);
  if (missed) __atomic_fetch_add(&e->missed, missed, __ATOMIC_RELAXED);
  __atomic_store_n(&e->heartbeat_ns, dp_ring_clock_ns(CLOCK_MONOTONIC), __ATOMIC_RELEASE);
}

static inline void dp_ring_close(dp_ring_reader *r) {
  if (r->base && r->table_index >= 0) {
    uint32_t me = (uint32_t)getpid();
    __atomic_compare_exchange_n(&r->hdr->readers[r->table_index].pid, &me, 0, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_RELAXED);
  }
  if (r->base) munmap(r->base, r->mapped);
  if (r->fd >= 0) close(r->fd);
  r->base = NULL;
  r->hdr = NULL;
  r->fd = -1;
  r->table_index = -1;
}

/* Opens /dev/shm/<name> read-write (readers write only their table entry and
   the waiters count). Returns 0, or -1 with r->err set; errno is ENOENT when
   the ring does not exist yet. */
static inline int dp_ring_open(dp_ring_reader *r, const char *name, int flags) {
  memset(r, 0, sizeof(*r));
  r->fd = -1;
  r->table_index = -1;
  if (!dp_ring_name_valid(name)) {
    snprintf(r->err, sizeof(r->err), "invalid ring name: use 1 to 200 of A-Z a-z 0-9 . _ -");
    errno = EINVAL;
    return -1;
  }
  snprintf(r->path, sizeof(r->path), "%s%s", DP_RING_DIR, name);
  r->fd = open(r->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (r->fd < 0) {
    int e = errno;
    snprintf(r->err, sizeof(r->err), "cannot open ring %s: %s", r->path, strerror(e));
    errno = e;
    return -1;
  }
  struct stat st;
  if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(r->err, sizeof(r->err), "%s is not a regular file", r->path);
    close(r->fd);
    r->fd = -1;
    errno = EINVAL;
    return -1;
  }
  r->dev = st.st_dev;
  r->ino = st.st_ino;
  r->mapped = (uint64_t)st.st_size;
  if (r->mapped < DP_RING_HEADER_SIZE) {
    snprintf(r->err, sizeof(r->err), "%s is %llu bytes, smaller than a ring header (not ready or not a ring)",
             r->path, (unsigned long long)r->mapped);
    close(r->fd);
    r->fd = -1;
    errno = EAGAIN;
    return -1;
  }
  r->base = mmap(NULL, r->mapped, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
  if (r->base == MAP_FAILED) {
    int e = errno;
    r->base = NULL;
    snprintf(r->err, sizeof(r->err), "cannot map %s: %s", r->path, strerror(e));
    close(r->fd);
    r->fd = -1;
    errno = e;
    return -1;
  }
  r->hdr = (dp_ring_header *)r->base;
  /* The writer stores the magic last, with release order: a ring still being
     created reads as "not ready" rather than as corrupt. */
  if (__atomic_load_n((const uint64_t *)r->hdr->magic, __ATOMIC_ACQUIRE) == 0) {
    snprintf(r->err, sizeof(r->err), "ring %s is still being created", name);
    dp_ring_close(r);
    errno = EAGAIN;
    return -1;
  }
  if (dp_ring_validate_header(r->base, r->mapped, r->err, sizeof(r->err)) != 0) {
    char keep[sizeof(r->err)];
    memcpy(keep, r->err, sizeof(keep));
    dp_ring_close(r);
    memcpy(r->err, keep, sizeof(keep));
    errno = EPROTO;
    return -1;
  }
  if (__atomic_load_n(&r->hdr->flags, __ATOMIC_ACQUIRE) & DP_RING_FLAG_REPLACED) {
    snprintf(r->err, sizeof(r->err), "ring %s is being replaced by a new writer", name);
    dp_ring_close(r);
    errno = EAGAIN;
    return -1;
  }
  r->slot_count = r->hdr->slot_count;
  r->slot_size = r->hdr->slot_size;
  r->slot_stride = r->hdr->slot_stride;
  r->generation = __atomic_load_n(&r->hdr->generation, __ATOMIC_ACQUIRE);
  uint64_t ws = __atomic_load_n(&r->hdr->write_seq, __ATOMIC_ACQUIRE);
  if (flags & DP_RING_FROM_OLDEST) {
    r->next = ws >= r->slot_count ? ws - r->slot_count + 2 : 1;
    if (r->next > ws && ws > 0) r->next = ws;
    r->last = r->next - 1;
  } else {
    r->next = ws + 1;
    r->last = ws;
  }
  dp_ring_reader_register(r);
  return 0;
}

/* 1 when the segment at r->path is no longer the one we mapped. */
static inline int dp_ring_replaced(const dp_ring_reader *r) {
  if (__atomic_load_n(&r->hdr->flags, __ATOMIC_ACQUIRE) & DP_RING_FLAG_REPLACED) return 1;
  struct stat st;
  if (stat(r->path, &st) != 0) return 0; /* gone: a new writer has not created it yet */
  return st.st_dev != r->dev || st.st_ino != r->ino;
}

/* 1 when a live process is writing this ring. */
static inline int dp_ring_writer_alive(const dp_ring_reader *r) {
  return dp_ring_pid_alive(__atomic_load_n(&r->hdr->writer_pid, __ATOMIC_ACQUIRE));
}

static inline const char *dp_ring_content_type(const dp_ring_reader *r, char *out, size_t outlen) {
  /* Copy then terminate: the writer may rewrite it on takeover. */
  size_t n = outlen - 1 < DP_RING_CONTENT_TYPE_CAPACITY - 1 ? outlen - 1 : DP_RING_CONTENT_TYPE_CAPACITY - 1;
  memcpy(out, (const char *)r->hdr->content_type, n);
  out[n] = 0;
  return out;
}

/* Copies frame `seq` if it is still in the ring. Returns DP_RING_OK, 0 when
   the slot holds another frame (overwritten or not written yet), or an error. */
static inline int dp_ring_copy_seq(dp_ring_reader *r, uint64_t seq, void *buf, uint64_t cap, char *meta,
                                   uint32_t meta_cap, dp_ring_frame_info *info) {
  dp_ring_slot *s = dp_ring_slot_at(r->base, DP_RING_HEADER_SIZE, r->slot_stride, r->slot_count, seq);
  uint64_t s1 = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
  if (s1 != 2 * seq) return 0;
  uint64_t len = __atomic_load_n(&s->length, __ATOMIC_RELAXED);
  uint32_t mlen = __atomic_load_n(&s->meta_len, __ATOMIC_RELAXED);
  uint64_t rt = __atomic_load_n(&s->realtime_ns, __ATOMIC_RELAXED);
  uint64_t mono = __atomic_load_n(&s->monotonic_ns, __ATOMIC_RELAXED);
  if (len > r->slot_size || mlen > DP_RING_META_CAPACITY) {
    /* A committed slot never holds these; re-check so that a torn read is not called corruption. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != s1) return 0;
    snprintf(r->err, sizeof(r->err), "corrupt slot: frame %llu has length %llu (slot holds %llu) meta %u",
             (unsigned long long)seq, (unsigned long long)len, (unsigned long long)r->slot_size, mlen);
    return DP_RING_E_CORRUPT;
  }
  info->length = len;
  info->meta_len = mlen;
  if (len > cap) {
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != s1) return 0;
    return DP_RING_E_TOO_SMALL;
  }
  if (len) memcpy(buf, (const char *)s + DP_RING_SLOT_HEADER_SIZE, len);
  if (meta && meta_cap) {
    uint32_t m = mlen < meta_cap - 1 ? mlen : meta_cap - 1;
    memcpy(meta, s->meta, m);
    meta[m] = 0;
    info->meta_len = m;
  }
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != s1) return 0; /* torn: the writer came round */
  info->seq = seq;
  info->realtime_ns = rt;
  info->monotonic_ns = mono;
  info->generation = r->generation;
  return DP_RING_OK;
}

static inline int dp_ring_check_generation(dp_ring_reader *r, dp_ring_frame_info *info) {
  uint32_t g = __atomic_load_n(&r->hdr->generation, __ATOMIC_ACQUIRE);
  if (g == r->generation) return 0;
  /* A new writer restarted the sequence: follow it from its first frame. */
  r->generation = g;
  r->next = 1;
  r->last = 0;
  info->resynced = 1;
  return 1;
}

/* Opt-in: poll for up to spin_us either side of the moment the next frame is
   expected, instead of sleeping through it. A sleeping reader is woken by the
   kernel, which on a busy or virtual machine takes from tens of microseconds
   to a few milliseconds; a reader that knows the writer's pace (a camera's
   frame interval) can be awake when the frame lands, at the price of up to
   2 * spin_us of CPU per frame. 0 turns it off (the default). Frames that do
   not come at a steady pace simply fall back to sleeping. */
static inline void dp_ring_set_spin(dp_ring_reader *r, uint32_t spin_us) {
  r->spin_ns = (uint64_t)spin_us * 1000ull;
  r->pace_period_ns = r->pace_delay_ns = r->pace_last_mono = 0;
}

/* Learns the pace from each delivered frame (monotonic capture time, and when it became readable). */
static inline void dp_ring_pace_learn(dp_ring_reader *r, const dp_ring_frame_info *info) {
  uint64_t readable_ns = r->pace_arrived_ns;
  r->pace_arrived_ns = 0;
  if (!info->monotonic_ns) return;
  if (r->pace_last_mono && info->monotonic_ns > r->pace_last_mono) {
    uint64_t d = (info->monotonic_ns - r->pace_last_mono) / (info->missed + 1);
    /* A smoothed interval; a jump (a new rate, a pause) replaces it outright. */
    if (!r->pace_period_ns || d > 2 * r->pace_period_ns || 2 * d < r->pace_period_ns) r->pace_period_ns = d;
    else r->pace_period_ns = r->pace_period_ns - r->pace_period_ns / 8 + d / 8;
  }
  r->pace_last_mono = info->monotonic_ns;
  if (readable_ns && readable_ns > info->monotonic_ns) {
    uint64_t delay = readable_ns - info->monotonic_ns;
    /* The low end: a late wake-up must not teach the reader to wake later. */
    if (!r->pace_delay_ns || delay < r->pace_delay_ns) r->pace_delay_ns = delay;
    else r->pace_delay_ns += (delay - r->pace_delay_ns) / 64;
  }
}

/* When the next frame is due (0: not known). */
static inline uint64_t dp_ring_pace_due(const dp_ring_reader *r) {
  if (!r->spin_ns || !r->pace_period_ns || !r->pace_last_mono) return 0;
  return r->pace_last_mono + r->pace_period_ns + r->pace_delay_ns;
}

static inline void dp_ring_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Waits up to timeout_ms (-1: forever, 0: do not wait) for the next frame and
   copies it into buf (payload) and meta (NUL-terminated JSON, may be NULL).
   A reader that fell behind skips ahead (read protocol, step 4) and reports
   what it lost in info->missed. */
static inline int dp_ring_read(dp_ring_reader *r, void *buf, uint64_t cap, char *meta, uint32_t meta_cap,
                               dp_ring_frame_info *info, int timeout_ms) {
  memset(info, 0, sizeof(*info));
  uint64_t deadline = timeout_ms > 0 ? dp_ring_clock_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000ull : 0;
  unsigned spins = 0;
  int waited = 0;
  for (;;) {
    dp_ring_check_generation(r, info);
    uint32_t fx = __atomic_load_n(&r->hdr->futex, __ATOMIC_ACQUIRE);
    uint64_t ws = __atomic_load_n(&r->hdr->write_seq, __ATOMIC_ACQUIRE);
    if (ws >= r->next) {
      /* A wait ended with the frame there: now is when it became readable. */
      if (waited && r->spin_ns && !r->pace_arrived_ns) r->pace_arrived_ns = dp_ring_clock_ns(CLOCK_MONOTONIC);
      /* The slot of ws+1 (being written now) is the slot of ws+1-slot_count. */
      uint64_t oldest = ws >= r->slot_count ? ws - r->slot_count + 2 : 1;
      if (oldest > ws) oldest = ws;
      if (r->next < oldest) {
        /* Overrun. The oldest frame is the next one the writer overwrites, so
           a reader that copies about as fast as the writer writes (large
           frames) would lose that race again and again. Resume halfway
           instead: half the ring's time to copy, half its frames kept. */
        uint64_t half = (uint64_t)(r->slot_count - 1) / 2;
        r->next = ws - half > oldest ? ws - half : oldest;
      }
      int rc = dp_ring_copy_seq(r, r->next, buf, cap, meta, meta_cap, info);
      if (rc == DP_RING_OK) {
        if (dp_ring_check_generation(r, info)) continue; /* the frame may be from the old generation */
        info->missed = r->next - r->last - 1;
        r->last = r->next;
        r->next++;
        dp_ring_reader_heartbeat(r, info->missed);
        if (r->spin_ns && r->next > ws) dp_ring_pace_learn(r, info);
        return DP_RING_OK;
      }
      if (rc < 0) return rc;
      {
        /* The slot already belongs to a newer frame (committed, or queued for
           one: a zero-copy writer marks slots ahead of write_seq), so frame
           `next` is gone. Count it as missed and try the one after. */
        const dp_ring_slot *s = dp_ring_slot_at(r->base, DP_RING_HEADER_SIZE, r->slot_stride, r->slot_count, r->next);
        uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if ((st >> 1) > r->next && r->next < ws) {
          r->next++;
          continue;
        }
      }
      /* Overwritten while we looked: re-read write_seq and skip ahead. A
         bounded count keeps a hostile segment from holding us forever. */
      if (++spins > 100000) {
        snprintf(r->err, sizeof(r->err), "ring never settles: slot states disagree with write_seq");
        return DP_RING_E_CORRUPT;
      }
      continue;
    }
    if (ws + 1 < r->next) {
      /* write_seq went backwards without a generation change: only a broken writer does that. */
      r->next = ws + 1;
      r->last = ws;
    }
    if (timeout_ms == 0) return DP_RING_TIMEOUT;
    struct timespec ts, *tsp = NULL;
    uint64_t wake_at = deadline;
    uint64_t due = dp_ring_pace_due(r);
    if (due) {
      uint64_t now = dp_ring_clock_ns(CLOCK_MONOTONIC);
      if (now + r->spin_ns >= due && now < due + r->spin_ns) {
        /* Inside the window: poll the futex word, which every commit changes,
           until the window or the caller's deadline ends, whichever is first. */
        uint64_t until = due + r->spin_ns;
        if (deadline && deadline < until) until = deadline;
        while (__atomic_load_n(&r->hdr->futex, __ATOMIC_ACQUIRE) == fx && !(r->cancel && *r->cancel) &&
               dp_ring_clock_ns(CLOCK_MONOTONIC) < until)
          dp_ring_cpu_relax();
        waited = 1;
        if (__atomic_load_n(&r->hdr->futex, __ATOMIC_ACQUIRE) != fx) continue;
        /* The frame is late: forget the pace until frames come again, and sleep. */
        r->pace_last_mono = 0;
      } else if (now + r->spin_ns < due) {
        /* Sleep until the window opens (or a frame, or the caller's deadline, comes first). */
        if (!wake_at || due - r->spin_ns < wake_at) wake_at = due - r->spin_ns;
      }
    }
    if (wake_at) {
      uint64_t now = dp_ring_clock_ns(CLOCK_MONOTONIC);
      if (deadline && now >= deadline) {
        dp_ring_reader_heartbeat(r, 0);
        return dp_ring_replaced(r) ? DP_RING_E_REPLACED : DP_RING_TIMEOUT;
      }
      uint64_t left = wake_at > now ? wake_at - now : 0;
      ts.tv_sec = (time_t)(left / 1000000000ull);
      ts.tv_nsec = (long)(left % 1000000000ull);
      tsp = &ts;
    }
    if (__atomic_load_n(&r->hdr->flags, __ATOMIC_ACQUIRE) & DP_RING_FLAG_REPLACED) return DP_RING_E_REPLACED;
    __atomic_fetch_add(&r->hdr->waiters, 1, __ATOMIC_ACQ_REL);
    long rc = dp_ring_futex(&r->hdr->futex, FUTEX_WAIT, fx, tsp);
    int e = errno;
    waited = 1;
    __atomic_fetch_sub(&r->hdr->waiters, 1, __ATOMIC_ACQ_REL);
    if (rc != 0 && e != EAGAIN && e != EINTR && e != ETIMEDOUT) {
      snprintf(r->err, sizeof(r->err), "futex wait failed: %s", strerror(e));
      return DP_RING_E_SYSTEM;
    }
    if (r->cancel && *r->cancel) return DP_RING_TIMEOUT;
  }
}

/* Copies the newest committed frame (without waiting) and moves the cursor
   past it. Returns DP_RING_OK, DP_RING_TIMEOUT when there is none, or an error. */
static inline int dp_ring_latest(dp_ring_reader *r, void *buf, uint64_t cap, char *meta, uint32_t meta_cap,
                                 dp_ring_frame_info *info) {
  memset(info, 0, sizeof(*info));
  for (unsigned spins = 0; spins < 100000; spins++) {
    dp_ring_check_generation(r, info);
    uint64_t ws = __atomic_load_n(&r->hdr->write_seq, __ATOMIC_ACQUIRE);
    if (ws == 0) return DP_RING_TIMEOUT;
    int rc = dp_ring_copy_seq(r, ws, buf, cap, meta, meta_cap, info);
    if (rc < 0) return rc;
    if (rc == DP_RING_OK) {
      if (dp_ring_check_generation(r, info)) continue;
      info->missed = ws > r->last ? ws - r->last - 1 : 0;
      r->last = ws;
      r->next = ws + 1;
      dp_ring_reader_heartbeat(r, info->missed);
      return DP_RING_OK;
    }
  }
  snprintf(r->err, sizeof(r->err), "ring never settles: slot states disagree with write_seq");
  return DP_RING_E_CORRUPT;
}

#ifdef __cplusplus
}
#endif

#endif /* DEVPLANE_SHM_RING_H */
