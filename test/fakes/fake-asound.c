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
 * Audio becomes readable a period at a time, as a sound card's period
 * interrupts make it: a read returns at most up to the end of the period it
 * is in, once that period is complete, so a program wakes once per period of
 * the configuration it chose (8 times a second for arecord's default 125 ms,
 * 100 for 10 ms periods). Before the hardware parameters are set the period
 * is taken to be 10 ms.
 * With DEVPLANE_FAKE_ASOUND_STAMP=1 as well, each 10 ms piece of the stream
 * (counted from its start) begins with the CLOCK_MONOTONIC time (8 bytes,
 * little-endian) at which a microphone would have finished capturing it, so a
 * reader can tell how late it got it.
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

/* Real-time pacing, per PCM: the stream's rate and period, and the audio read since it started. */
#define MAX_PACED 16
static struct paced {
  snd_pcm_t *pcm;
  unsigned rate;
  unsigned long period;
  long frame_bytes;
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

static unsigned long period_of(const struct paced *p) {
  unsigned long n = p->period ? p->period : p->rate / 100;
  return n ? n : 1;
}

static struct timespec after_start(const struct paced *p, unsigned long long frames) {
  unsigned long long ns = frames * 1000000000ull / p->rate;
  struct timespec t = p->start;
  t.tv_sec += (time_t)(ns / 1000000000ull);
  t.tv_nsec += (long)(ns % 1000000000ull);
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

static void pace(snd_pcm_t *pcm, void *buffer, long frames) {
  struct paced *p = pace_of(pcm, 0);
  if (!p || !p->rate || frames <= 0) return;
  /* Programs that let the first read start the stream never call snd_pcm_start. */
  if (p->start.tv_sec == 0 && p->start.tv_nsec == 0) clock_gettime(CLOCK_MONOTONIC, &p->start);
  unsigned long long first = p->frames;
  p->frames += (unsigned long long)frames;
  unsigned long long period = period_of(p);
  struct timespec until = after_start(p, (p->frames + period - 1) / period * period);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
  }
  const char *stamp = getenv("DEVPLANE_FAKE_ASOUND_STAMP");
  if (!stamp || *stamp != '1') return;
  unsigned long long piece = p->rate / 100 ? p->rate / 100 : 1;
  if (p->frame_bytes <= 0) {
    /* Frame size unknown: one stamp, for the audio of this read. */
    struct timespec done = after_start(p, p->frames);
    unsigned long long at = (unsigned long long)done.tv_sec * 1000000000ull + (unsigned long long)done.tv_nsec;
    memcpy(buffer, &at, sizeof(at));
    return;
  }
  size_t bytes = (size_t)frames * (size_t)p->frame_bytes;
  for (unsigned long long s = (first + piece - 1) / piece * piece; s < p->frames; s += piece) {
    struct timespec done = after_start(p, s + piece);
    unsigned long long at = (unsigned long long)done.tv_sec * 1000000000ull + (unsigned long long)done.tv_nsec;
    size_t offset = (size_t)(s - first) * (size_t)p->frame_bytes;
    memcpy((char *)buffer + offset, &at, bytes - offset < sizeof(at) ? bytes - offset : sizeof(at));
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

int snd_pcm_hw_params(snd_pcm_t *pcm, void *params) {
  static int (*fn)(snd_pcm_t *, void *);
  if (!fn) fn = (int (*)(snd_pcm_t *, void *))real_symbol("snd_pcm_hw_params");
  int rc = fn(pcm, params);
  struct paced *p = rc == 0 ? pace_of(pcm, 0) : NULL;
  if (p) {
    static int (*get_period)(const void *, snd_pcm_uframes_t *, int *);
    static snd_pcm_sframes_t (*to_bytes)(snd_pcm_t *, snd_pcm_sframes_t);
    if (!get_period)
      get_period = (int (*)(const void *, snd_pcm_uframes_t *, int *))real_symbol("snd_pcm_hw_params_get_period_size");
    if (!to_bytes) to_bytes = (snd_pcm_sframes_t(*)(snd_pcm_t *, snd_pcm_sframes_t))real_symbol("snd_pcm_frames_to_bytes");
    snd_pcm_uframes_t period = 0;
    int dir = 0;
    if (get_period(params, &period, &dir) == 0) p->period = period;
    p->frame_bytes = to_bytes(pcm, 1);
  }
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
  /* No further than the end of the period the stream is in: the rest is not captured yet. */
  struct paced *p = pace_of(pcm, 0);
  if (p && p->rate >= 100) {
    unsigned long period = period_of(p);
    snd_pcm_uframes_t left = period - (snd_pcm_uframes_t)(p->frames % period);
    if (size > left) size = left;
  }
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
