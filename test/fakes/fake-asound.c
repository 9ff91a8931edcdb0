/*
 * A stand-in for libasound.so.2 that forwards every call the addon makes to
 * the real alsa-lib, and injects the faults a microphone produces but alsa-lib's
 * file plugin cannot: an overrun, an unplug, a device another process holds.
 * Tests load it through DEVPLANE_LIBASOUND, the same dlopen path production
 * takes, so everything between the fault and the node is production code.
 *
 * Faults are files in $DEVPLANE_FAKE_ASOUND_DIR:
 *   overrun    the next snd_pcm_readi returns -EPIPE; the file is then removed
 *   unplugged  snd_pcm_open and snd_pcm_readi fail with -ENODEV while it exists
 *   busy       snd_pcm_open fails with -EBUSY while it exists
 * and every snd_pcm_recover call appends its error code to recover.log there.
 *
 * With DEVPLANE_FAKE_ASOUND_PACE=1 reads also take as long as the audio they
 * return, as a microphone's do: the file plugin alone delivers a minute of
 * audio in milliseconds, and a flow fed that fast only measures its backlog.
 * With DEVPLANE_FAKE_ASOUND_STAMP=1 as well, each 10 ms piece read starts with
 * the CLOCK_MONOTONIC time (8 bytes, little-endian) at which a microphone
 * would have finished capturing it, so a reader can tell how late it got it.
 *
 * The wrapper also works under LD_PRELOAD, for programs linked with alsa-lib
 * (arecord in the benchmark).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct snd_pcm snd_pcm_t;
typedef unsigned long snd_pcm_uframes_t;
typedef long snd_pcm_sframes_t;

static void *real_symbol(const char *name) {
  static void *real;
  if (!real) real = dlopen("libasound.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!real) {
    fprintf(stderr, "fake-asound: cannot load the real libasound.so.2: %s\n", dlerror());
    abort();
  }
  void *p = dlsym(real, name);
  if (!p) {
    fprintf(stderr, "fake-asound: libasound.so.2 has no %s\n", name);
    abort();
  }
  return p;
}

#define FORWARD(ret, name, params, args)                      \
  ret name params {                                           \
    static ret(*fn) params;                                   \
    if (!fn) fn = (ret(*) params)real_symbol(#name);          \
    return fn args;                                           \
  }

#define FORWARD_VOID(name, params, args)                      \
  void name params {                                          \
    static void(*fn) params;                                  \
    if (!fn) fn = (void(*) params)real_symbol(#name);         \
    fn args;                                                  \
  }

static int fault_path(const char *name, char *out, size_t size) {
  const char *dir = getenv("DEVPLANE_FAKE_ASOUND_DIR");
  if (!dir || !*dir) return 0;
  snprintf(out, size, "%s/%s", dir, name);
  return 1;
}

static int fault_on(const char *name) {
  char p[4096];
  return fault_path(name, p, sizeof(p)) && access(p, F_OK) == 0;
}

/* One-shot faults: whoever removes the file gets the fault. */
static int fault_take(const char *name) {
  char p[4096];
  return fault_path(name, p, sizeof(p)) && unlink(p) == 0;
}

/* Real-time pacing, per PCM: the stream's rate, and the audio read since it started. */
#define MAX_PACED 16
static struct paced {
  snd_pcm_t *pcm;
  unsigned rate;
  struct timespec start;
  unsigned long long frames;
} paced[MAX_PACED];

static struct paced *pace_of(snd_pcm_t *pcm, int create) {
  const char *on = getenv("DEVPLANE_FAKE_ASOUND_PACE");
  if (!on || *on != '1') return NULL;
  struct paced *free_slot = NULL;
  for (int i = 0; i < MAX_PACED; i++) {
    if (paced[i].pcm == pcm) return &paced[i];
    if (!paced[i].pcm && !free_slot) free_slot = &paced[i];
  }
  if (!create || !free_slot) return NULL;
  free_slot->pcm = pcm;
  return free_slot;
}

static void pace(snd_pcm_t *pcm, void *buffer, long frames) {
  struct paced *p = pace_of(pcm, 0);
  if (!p || !p->rate || frames <= 0) return;
  /* Programs that let the first read start the stream never call snd_pcm_start. */
  if (p->start.tv_sec == 0 && p->start.tv_nsec == 0) clock_gettime(CLOCK_MONOTONIC, &p->start);
  p->frames += (unsigned long long)frames;
  unsigned long long ns = p->frames * 1000000000ull / p->rate;
  struct timespec until = p->start;
  until.tv_sec += (time_t)(ns / 1000000000ull);
  until.tv_nsec += (long)(ns % 1000000000ull);
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
  }
  const char *stamp = getenv("DEVPLANE_FAKE_ASOUND_STAMP");
  if (stamp && *stamp == '1') {
    unsigned long long at = (unsigned long long)until.tv_sec * 1000000000ull + (unsigned long long)until.tv_nsec;
    memcpy(buffer, &at, sizeof(at));
  }
}

int snd_pcm_hw_params_set_rate_near(snd_pcm_t *pcm, void *params, unsigned *val, int *dir) {
  static int (*fn)(snd_pcm_t *, void *, unsigned *, int *);
  if (!fn) fn = (int (*)(snd_pcm_t *, void *, unsigned *, int *))real_symbol("snd_pcm_hw_params_set_rate_near");
  int rc = fn(pcm, params, val, dir);
  struct paced *p = rc == 0 ? pace_of(pcm, 1) : NULL;
  if (p) p->rate = *val;
  return rc;
}

int snd_pcm_start(snd_pcm_t *pcm) {
  static int (*fn)(snd_pcm_t *);
  if (!fn) fn = (int (*)(snd_pcm_t *))real_symbol("snd_pcm_start");
  struct paced *p = pace_of(pcm, 0);
  if (p) {
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    p->frames = 0;
  }
  return fn(pcm);
}

int snd_pcm_close(snd_pcm_t *pcm) {
  static int (*fn)(snd_pcm_t *);
  if (!fn) fn = (int (*)(snd_pcm_t *))real_symbol("snd_pcm_close");
  struct paced *p = pace_of(pcm, 0);
  if (p) memset(p, 0, sizeof(*p));
  return fn(pcm);
}

int snd_pcm_open(snd_pcm_t **pcm, const char *name, int stream, int mode) {
  static int (*fn)(snd_pcm_t **, const char *, int, int);
  if (!fn) fn = (int (*)(snd_pcm_t **, const char *, int, int))real_symbol("snd_pcm_open");
  if (fault_on("unplugged")) return -ENODEV;
  if (fault_on("busy")) return -EBUSY;
  return fn(pcm, name, stream, mode);
}

snd_pcm_sframes_t snd_pcm_readi(snd_pcm_t *pcm, void *buffer, snd_pcm_uframes_t size) {
  static snd_pcm_sframes_t (*fn)(snd_pcm_t *, void *, snd_pcm_uframes_t);
  if (!fn) fn = (snd_pcm_sframes_t(*)(snd_pcm_t *, void *, snd_pcm_uframes_t))real_symbol("snd_pcm_readi");
  if (fault_on("unplugged")) return -ENODEV;
  if (fault_take("overrun")) return -EPIPE;
  /* A paced device hands over about 10 ms at a time, as one with 10 ms periods does. */
  struct paced *p = pace_of(pcm, 0);
  if (p && p->rate >= 100 && size > p->rate / 100) size = p->rate / 100;
  snd_pcm_sframes_t n = fn(pcm, buffer, size);
  pace(pcm, buffer, n);
  return n;
}

int snd_pcm_recover(snd_pcm_t *pcm, int err, int silent) {
  static int (*fn)(snd_pcm_t *, int, int);
  if (!fn) fn = (int (*)(snd_pcm_t *, int, int))real_symbol("snd_pcm_recover");
  char p[4096];
  if (fault_path("recover.log", p, sizeof(p))) {
    FILE *f = fopen(p, "a");
    if (f) {
      fprintf(f, "%d\n", err);
      fclose(f);
    }
  }
  return fn(pcm, err, silent);
}

FORWARD(int, snd_pcm_hw_params_malloc, (void **ptr), (ptr))
FORWARD_VOID(snd_pcm_hw_params_free, (void *obj), (obj))
FORWARD(int, snd_pcm_hw_params_any, (snd_pcm_t * pcm, void *params), (pcm, params))
FORWARD(int, snd_pcm_hw_params_set_access, (snd_pcm_t * pcm, void *params, int access), (pcm, params, access))
FORWARD(int, snd_pcm_hw_params_test_format, (snd_pcm_t * pcm, void *params, int format), (pcm, params, format))
FORWARD(int, snd_pcm_hw_params_set_format, (snd_pcm_t * pcm, void *params, int format), (pcm, params, format))
FORWARD(int, snd_pcm_hw_params_get_channels_min, (const void *params, unsigned *val), (params, val))
FORWARD(int, snd_pcm_hw_params_get_channels_max, (const void *params, unsigned *val), (params, val))
FORWARD(int, snd_pcm_hw_params_set_channels, (snd_pcm_t * pcm, void *params, unsigned val), (pcm, params, val))
FORWARD(int, snd_pcm_hw_params_set_buffer_size_near, (snd_pcm_t * pcm, void *params, snd_pcm_uframes_t *val),
        (pcm, params, val))
FORWARD(int, snd_pcm_hw_params_set_period_size_near,
        (snd_pcm_t * pcm, void *params, snd_pcm_uframes_t *val, int *dir), (pcm, params, val, dir))
FORWARD(int, snd_pcm_hw_params, (snd_pcm_t * pcm, void *params), (pcm, params))
FORWARD(int, snd_pcm_hw_params_get_period_size, (const void *params, snd_pcm_uframes_t *val, int *dir),
        (params, val, dir))
FORWARD(int, snd_pcm_hw_params_get_buffer_size, (const void *params, snd_pcm_uframes_t *val), (params, val))
FORWARD(int, snd_pcm_sw_params_malloc, (void **ptr), (ptr))
FORWARD_VOID(snd_pcm_sw_params_free, (void *obj), (obj))
FORWARD(int, snd_pcm_sw_params_current, (snd_pcm_t * pcm, void *params), (pcm, params))
FORWARD(int, snd_pcm_sw_params_set_avail_min, (snd_pcm_t * pcm, void *params, snd_pcm_uframes_t val),
        (pcm, params, val))
FORWARD(int, snd_pcm_sw_params_set_start_threshold, (snd_pcm_t * pcm, void *params, snd_pcm_uframes_t val),
        (pcm, params, val))
FORWARD(int, snd_pcm_sw_params, (snd_pcm_t * pcm, void *params), (pcm, params))
FORWARD(int, snd_pcm_state, (snd_pcm_t * pcm), (pcm))
FORWARD(snd_pcm_sframes_t, snd_pcm_avail_update, (snd_pcm_t * pcm), (pcm))
FORWARD(int, snd_pcm_poll_descriptors_count, (snd_pcm_t * pcm), (pcm))
FORWARD(int, snd_pcm_poll_descriptors, (snd_pcm_t * pcm, struct pollfd *pfds, unsigned space), (pcm, pfds, space))
FORWARD(int, snd_pcm_poll_descriptors_revents,
        (snd_pcm_t * pcm, struct pollfd *pfds, unsigned nfds, unsigned short *revents), (pcm, pfds, nfds, revents))
FORWARD(const char *, snd_strerror, (int errnum), (errnum))
FORWARD(int, snd_lib_error_set_handler, (void *handler), (handler))
FORWARD(int, snd_device_name_hint, (int card, const char *iface, void ***hints), (card, iface, hints))
FORWARD(char *, snd_device_name_get_hint, (const void *hint, const char *id), (hint, id))
FORWARD(int, snd_device_name_free_hint, (void **hints), (hints))
FORWARD(int, snd_card_next, (int *card), (card))
FORWARD(int, snd_card_get_index, (const char *name), (name))
FORWARD(int, snd_card_get_name, (int card, char **name), (card, name))
FORWARD(int, snd_card_get_longname, (int card, char **name), (card, name))
