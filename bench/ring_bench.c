/*
 * The far end of bench/shm.ts: a process that receives frames by one
 * transport and reports, as one JSON line, how many arrived, over what time,
 * and the latency of each (now minus the sender's CLOCK_MONOTONIC stamp).
 *
 *   ring_bench ring NAME COUNT      read COUNT frames from a devplane ring
 *   ring_bench pipe BYTES COUNT     read COUNT frames of BYTES from stdin;
 *                                   each starts with an 8-byte stamp
 *   ring_bench memcpy BYTES COUNT   copy BYTES COUNT times into an 8-frame footprint
 *   ring_bench memcpy-hot BYTES COUNT  the same between two cache-hot buffers
 *
 * Every received frame is copied into private memory once, as a consumer
 * would, so every transport pays for the bytes it delivers.
 */
#include <devplane/shm_ring.h>

#include <stdlib.h>

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *transport, uint64_t bytes, uint64_t frames, uint64_t missed, uint64_t elapsed_ns,
                   uint64_t *lat, uint64_t nlat) {
  qsort(lat, nlat, sizeof(uint64_t), cmp_u64);
  uint64_t p50 = nlat ? lat[nlat / 2] : 0;
  uint64_t p99 = nlat ? lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] : 0;
  printf("{\"transport\":\"%s\",\"bytes\":%llu,\"frames\":%llu,\"missed\":%llu,\"elapsed_ns\":%llu,"
         "\"p50_ns\":%llu,\"p99_ns\":%llu}\n",
         transport, (unsigned long long)bytes, (unsigned long long)frames, (unsigned long long)missed,
         (unsigned long long)elapsed_ns, (unsigned long long)p50, (unsigned long long)p99);
  fflush(stdout);
}

static int read_full(int fd, unsigned char *p, size_t n) {
  while (n) {
    ssize_t k = read(fd, p, n);
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  const char *mode = argv[1];
  uint64_t count = strtoull(argv[3], NULL, 10);
  uint64_t *lat = calloc(count ? count : 1, sizeof(uint64_t));
  if (!lat) return 1;

  if (!strcmp(mode, "ring")) {
    dp_ring_reader r;
    /* The writer may not exist yet: say so once, then wait for it. */
    while (dp_ring_open(&r, argv[2], DP_RING_FROM_OLDEST) != 0) usleep(1000);
    printf("{\"ready\":true}\n");
    fflush(stdout);
    unsigned char *buf = malloc(r.slot_size);
    uint64_t got = 0, missed = 0, first_stamp = 0, last_done = 0;
    while (got < count) {
      dp_ring_frame_info info;
      int rc = dp_ring_read(&r, buf, r.slot_size, NULL, 0, &info, 5000);
      if (rc != DP_RING_OK) break;
      uint64_t now = dp_ring_clock_ns(CLOCK_MONOTONIC);
      if (!first_stamp) first_stamp = info.monotonic_ns;
      lat[got++] = now - info.monotonic_ns;
      missed += info.missed;
      last_done = now;
      /* The writer numbers its last frame `count`; lost frames still end the run there. */
      if (info.seq >= count) break;
    }
    report("shm", r.slot_size, got, missed, last_done - first_stamp, lat, got);
    dp_ring_close(&r);
    return 0;
  }

  uint64_t bytes = strtoull(argv[2], NULL, 10);
  unsigned char *buf = malloc(bytes);
  if (!buf) return 1;
  if (!strcmp(mode, "pipe")) {
    printf("{\"ready\":true}\n");
    fflush(stdout);
    uint64_t got = 0, first_stamp = 0, last_done = 0;
    while (got < count && read_full(0, buf, bytes) == 0) {
      uint64_t now = dp_ring_clock_ns(CLOCK_MONOTONIC), stamp;
      memcpy(&stamp, buf, 8);
      if (!first_stamp) first_stamp = stamp;
      lat[got++] = now - stamp;
      last_done = now;
    }
    report("pipe", bytes, got, 0, last_done - first_stamp, lat, got);
    return 0;
  }
  if (!strcmp(mode, "memcpy") || !strcmp(mode, "memcpy-hot")) {
    /* "memcpy": each frame lands in the next of 8 frame-sized buffers, the
       footprint of an 8-slot ring, so it pays for memory that is not in cache
       just as any transport must. "memcpy-hot" copies between the same two
       buffers and mostly measures the cache. */
    int hot = !strcmp(mode, "memcpy-hot");
    uint64_t slots = hot ? 1 : 8;
    unsigned char *src = malloc(bytes);
    unsigned char *base = malloc(bytes * slots + 64);
    if (!src || !base) return 1;
    /* Source and destination a multiple of 4 KiB apart make loads alias the
       stores just made (a CPU pathology no transport here meets); 64 bytes
       off avoids it. */
    unsigned char *dst = base + 64;
    memset(src, 1, bytes);
    memset(dst, 2, bytes * slots); /* faulted in, as a ring's pages are */
    uint64_t start = dp_ring_clock_ns(CLOCK_MONOTONIC);
    for (uint64_t i = 0; i < count; i++) {
      uint64_t t0 = dp_ring_clock_ns(CLOCK_MONOTONIC);
      unsigned char *d = dst + (i % slots) * bytes;
      src[0] = (unsigned char)i;
      memcpy(d, src, bytes);
      __asm__ __volatile__("" : : "r"(d) : "memory");
      lat[i] = dp_ring_clock_ns(CLOCK_MONOTONIC) - t0;
    }
    report(mode, bytes, count, 0, dp_ring_clock_ns(CLOCK_MONOTONIC) - start, lat, count);
    return 0;
  }
  return 2;
}
