/*
 * Example: read frames from a devplane ring in C.
 *
 *   cc -O2 -I ../../native/include -o shm_reader shm_reader.c
 *   ./shm_reader frames --count 10
 *   ./shm_reader frames --spin-us 300   # awake when each frame is due (see dp_ring_set_spin)
 *
 * Prints one JSON line per frame: sequence, frames missed, length, an
 * FNV-1a 64-bit hash of the payload, and the metadata JSON.
 * Exits 0 after --count frames, 3 when --timeout-ms passes with no frame.
 */
#include <devplane/shm_ring.h>

#include <stdlib.h>

static uint64_t fnv1a64(const unsigned char *p, uint64_t n) {
  uint64_t h = 14695981039346656037ull;
  for (uint64_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

int main(int argc, char **argv) {
  const char *name = NULL;
  long count = -1;
  int timeout_ms = 5000;
  int flags = 0;
  unsigned spin_us = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc) count = atol(argv[++i]);
    else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) timeout_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--from-oldest")) flags |= DP_RING_FROM_OLDEST;
    else if (!strcmp(argv[i], "--spin-us") && i + 1 < argc) spin_us = (unsigned)atoi(argv[++i]);
    else name = argv[i];
  }
  if (!name) {
    fprintf(stderr, "usage: %s NAME [--count N] [--timeout-ms MS] [--from-oldest] [--spin-us US]\n", argv[0]);
    return 2;
  }

  dp_ring_reader r;
  if (dp_ring_open(&r, name, flags) != 0) {
    fprintf(stderr, "%s\n", r.err);
    return 1;
  }
  dp_ring_set_spin(&r, spin_us);
  char caps[DP_RING_CONTENT_TYPE_CAPACITY];
  fprintf(stderr, "reading %s (%s), %u slots of %llu bytes\n", name, dp_ring_content_type(&r, caps, sizeof caps),
          r.slot_count, (unsigned long long)r.slot_size);

  /* One slot's worth of buffer holds any frame this ring can carry. */
  unsigned char *buf = malloc(r.slot_size);
  char meta[DP_RING_META_CAPACITY + 1];
  if (!buf) return 1;
  for (long got = 0; count < 0 || got < count;) {
    dp_ring_frame_info info;
    int rc = dp_ring_read(&r, buf, r.slot_size, meta, sizeof meta, &info, timeout_ms);
    if (rc == DP_RING_TIMEOUT) {
      fprintf(stderr, "no frame within %d ms\n", timeout_ms);
      free(buf);
      dp_ring_close(&r);
      return 3;
    }
    if (rc == DP_RING_E_REPLACED) {
      /* A new writer made a new segment under the same name: follow it. */
      dp_ring_close(&r);
      if (dp_ring_open(&r, name, DP_RING_FROM_OLDEST) != 0) usleep(100000);
      else dp_ring_set_spin(&r, spin_us);
      continue;
    }
    if (rc < 0) {
      fprintf(stderr, "read failed: %s\n", r.err);
      free(buf);
      dp_ring_close(&r);
      return 1;
    }
    printf("{\"seq\":%llu,\"missed\":%llu,\"length\":%llu,\"fnv1a64\":\"%016llx\",\"generation\":%u,"
           "\"monotonic_ns\":%llu,\"meta\":%s}\n",
           (unsigned long long)info.seq, (unsigned long long)info.missed, (unsigned long long)info.length,
           (unsigned long long)fnv1a64(buf, info.length), info.generation, (unsigned long long)info.monotonic_ns,
           info.meta_len ? meta : "{}");
    fflush(stdout);
    got++;
  }
  free(buf);
  dp_ring_close(&r);
  return 0;
}
