/*
 * The far end of bench/v4l2.ts's direct-to-ring runs: a process that waits
 * on a camera ring's futex and reports, as one JSON line, how long each frame
 * took from the capture thread's DQBUF (its dequeue time, from the frame's
 * metadata) to being readable here, and to being copied out, plus how long
 * from the camera's capture time, split into the capture's part (DQBUF to
 * commit, also from the metadata) and the wake-up. Every frame is copied into private memory
 * once, as a consumer would.
 *
 *   v4l2_ring_reader NAME SECONDS WARMUP_SECONDS [SPIN_US]
 *
 * SPIN_US > 0 makes it a low-latency reader (dp_ring_set_spin): awake and
 * polling around the moment each frame is due instead of asleep in the kernel.
 */
#include <devplane/shm_ring.h>

#include <stdlib.h>
#include <sys/resource.h>

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, uint64_t n, unsigned p) {
  if (!n) return 0;
  uint64_t i = (n * p) / 100;
  return v[i < n ? i : n - 1];
}

static uint64_t meta_u64(const char *meta, const char *key) {
  const char *p = strstr(meta, key);
  return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static uint64_t cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: v4l2_ring_reader NAME SECONDS WARMUP_SECONDS\n");
    return 1;
  }
  const char *name = argv[1];
  uint64_t seconds = strtoull(argv[2], NULL, 10), warmup = strtoull(argv[3], NULL, 10);
  dp_ring_reader r;
  uint64_t t0 = dp_ring_clock_ns(CLOCK_MONOTONIC);
  while (dp_ring_open(&r, name, 0) != 0) {
    if (dp_ring_clock_ns(CLOCK_MONOTONIC) - t0 > 10000000000ull) {
      fprintf(stderr, "%s\n", r.err);
      return 2;
    }
    usleep(10000);
  }
  if (argc > 4) dp_ring_set_spin(&r, (uint32_t)strtoul(argv[4], NULL, 10));
  uint8_t *buf = malloc(r.slot_size ? r.slot_size : 1);
  uint64_t cap = 1 << 16;
  uint64_t *ready = malloc(cap * sizeof(uint64_t)), *copied = malloc(cap * sizeof(uint64_t)),
           *captured = malloc(cap * sizeof(uint64_t)), *committed = malloc(cap * sizeof(uint64_t));
  uint64_t n = 0, missed = 0, lost = 0, errors = 0;
  char meta[DP_RING_META_CAPACITY + 1];
  uint8_t one[1];
  uint64_t start = dp_ring_clock_ns(CLOCK_MONOTONIC);
  uint64_t measureFrom = start + warmup * 1000000000ull, end = measureFrom + seconds * 1000000000ull;
  uint64_t cpu0 = 0, firstLost = 0;
  int measuring = 0;
  for (;;) {
    uint64_t now = dp_ring_clock_ns(CLOCK_MONOTONIC);
    if (now >= end) break;
    if (!measuring && now >= measureFrom) {
      measuring = 1;
      cpu0 = cpu_ns();
    }
    dp_ring_frame_info info;
    /* A one-byte buffer: the frame is seen (too big to copy) without copying it. */
    int rc = dp_ring_read(&r, one, 0, NULL, 0, &info, 500);
    if (rc == DP_RING_TIMEOUT) continue;
    uint64_t tReady = dp_ring_clock_ns(CLOCK_MONOTONIC);
    if (rc != DP_RING_E_TOO_SMALL && rc != DP_RING_OK) {
      errors++;
      continue;
    }
    rc = dp_ring_read(&r, buf, r.slot_size, meta, sizeof(meta), &info, 0);
    uint64_t tCopied = dp_ring_clock_ns(CLOCK_MONOTONIC);
    if (rc != DP_RING_OK) {
      if (rc < 0) errors++;
      continue;
    }
    uint64_t dq = meta_u64(meta, "\"dqbufNs\":");
    uint64_t commit = meta_u64(meta, "\"commitNs\":");
    uint64_t frameLost = meta_u64(meta, "\"dropped\":");
    if (!measuring) {
      firstLost = frameLost;
      continue;
    }
    missed += info.missed;
    lost = frameLost - firstLost;
    if (n == cap) {
      cap *= 2;
      ready = realloc(ready, cap * sizeof(uint64_t));
      copied = realloc(copied, cap * sizeof(uint64_t));
      captured = realloc(captured, cap * sizeof(uint64_t));
      committed = realloc(committed, cap * sizeof(uint64_t));
    }
    ready[n] = dq && tReady > dq ? tReady - dq : 0;
    copied[n] = dq && tCopied > dq ? tCopied - dq : 0;
    captured[n] = tReady > info.monotonic_ns ? tReady - info.monotonic_ns : 0;
    committed[n] = dq && commit > dq ? commit - dq : 0;
    n++;
  }
  uint64_t cpu = cpu_ns() - cpu0;
  qsort(ready, n, sizeof(uint64_t), cmp_u64);
  qsort(copied, n, sizeof(uint64_t), cmp_u64);
  qsort(captured, n, sizeof(uint64_t), cmp_u64);
  qsort(committed, n, sizeof(uint64_t), cmp_u64);
  printf("{\"frames\":%llu,\"missed\":%llu,\"lost\":%llu,\"errors\":%llu,\"cpu_ns\":%llu,"
         "\"ready_p50_ns\":%llu,\"ready_p99_ns\":%llu,\"ready_max_ns\":%llu,\"copied_p50_ns\":%llu,\"copied_p99_ns\":%llu,"
         "\"capture_p50_ns\":%llu,\"capture_p99_ns\":%llu,\"commit_p50_ns\":%llu,\"commit_p99_ns\":%llu}\n",
         (unsigned long long)n, (unsigned long long)missed, (unsigned long long)lost, (unsigned long long)errors,
         (unsigned long long)cpu, (unsigned long long)pct(ready, n, 50), (unsigned long long)pct(ready, n, 99),
         (unsigned long long)(n ? ready[n - 1] : 0), (unsigned long long)pct(copied, n, 50),
         (unsigned long long)pct(copied, n, 99), (unsigned long long)pct(captured, n, 50),
         (unsigned long long)pct(captured, n, 99), (unsigned long long)pct(committed, n, 50),
         (unsigned long long)pct(committed, n, 99));
  dp_ring_close(&r);
  return 0;
}
