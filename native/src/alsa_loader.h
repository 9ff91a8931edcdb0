// alsa-lib reached through dlopen: the addon builds without ALSA headers and
// loads where libasound is missing, so only alsa-capture fails there.
#pragma once

#include <poll.h>

#include <string>

namespace devplane {
namespace alsa {

// Opaque alsa-lib types; only pointers to them cross the boundary.
struct snd_pcm_t;
struct snd_pcm_hw_params_t;
struct snd_pcm_sw_params_t;
typedef unsigned long snd_pcm_uframes_t;
typedef long snd_pcm_sframes_t;
typedef void (*snd_lib_error_handler_t)(const char *file, int line, const char *function, int err, const char *fmt, ...);

// The values <alsa/pcm.h> gives these enums; they are part of alsa-lib's ABI.
constexpr int SND_PCM_STREAM_CAPTURE = 1;
constexpr int SND_PCM_NONBLOCK = 1;
constexpr int SND_PCM_ACCESS_RW_INTERLEAVED = 3;
constexpr int SND_PCM_FORMAT_S16_LE = 2;
constexpr int SND_PCM_FORMAT_S32_LE = 10;
constexpr int SND_PCM_FORMAT_FLOAT_LE = 14;
constexpr int SND_PCM_STATE_PREPARED = 2;
constexpr int SND_PCM_STATE_XRUN = 4;
constexpr int SND_PCM_STATE_SUSPENDED = 7;
constexpr int SND_PCM_STATE_DISCONNECTED = 8;

struct Api {
  int (*pcm_open)(snd_pcm_t **pcm, const char *name, int stream, int mode);
  int (*pcm_close)(snd_pcm_t *pcm);
  int (*hw_params_malloc)(snd_pcm_hw_params_t **ptr);
  void (*hw_params_free)(snd_pcm_hw_params_t *obj);
  int (*hw_params_any)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params);
  int (*hw_params_set_access)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params, int access);
  int (*hw_params_test_format)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params, int format);
  int (*hw_params_set_format)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params, int format);
  int (*hw_params_get_channels_min)(const snd_pcm_hw_params_t *params, unsigned int *val);
  int (*hw_params_get_channels_max)(const snd_pcm_hw_params_t *params, unsigned int *val);
  int (*hw_params_set_channels)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params, unsigned int val);
  int (*hw_params_set_rate_near)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params, unsigned int *val, int *dir);
  int (*hw_params_set_buffer_size_near)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params, snd_pcm_uframes_t *val);
  int (*hw_params_set_period_size_near)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params, snd_pcm_uframes_t *val,
                                        int *dir);
  int (*hw_params)(snd_pcm_t *pcm, snd_pcm_hw_params_t *params);
  int (*hw_params_get_period_size)(const snd_pcm_hw_params_t *params, snd_pcm_uframes_t *val, int *dir);
  int (*hw_params_get_buffer_size)(const snd_pcm_hw_params_t *params, snd_pcm_uframes_t *val);
  int (*sw_params_malloc)(snd_pcm_sw_params_t **ptr);
  void (*sw_params_free)(snd_pcm_sw_params_t *obj);
  int (*sw_params_current)(snd_pcm_t *pcm, snd_pcm_sw_params_t *params);
  int (*sw_params_set_avail_min)(snd_pcm_t *pcm, snd_pcm_sw_params_t *params, snd_pcm_uframes_t val);
  int (*sw_params_set_start_threshold)(snd_pcm_t *pcm, snd_pcm_sw_params_t *params, snd_pcm_uframes_t val);
  int (*sw_params)(snd_pcm_t *pcm, snd_pcm_sw_params_t *params);
  int (*pcm_start)(snd_pcm_t *pcm);
  int (*pcm_state)(snd_pcm_t *pcm);
  snd_pcm_sframes_t (*pcm_readi)(snd_pcm_t *pcm, void *buffer, snd_pcm_uframes_t size);
  snd_pcm_sframes_t (*pcm_avail_update)(snd_pcm_t *pcm);
  int (*pcm_recover)(snd_pcm_t *pcm, int err, int silent);
  int (*pcm_poll_descriptors_count)(snd_pcm_t *pcm);
  int (*pcm_poll_descriptors)(snd_pcm_t *pcm, struct pollfd *pfds, unsigned int space);
  int (*pcm_poll_descriptors_revents)(snd_pcm_t *pcm, struct pollfd *pfds, unsigned int nfds,
                                      unsigned short *revents);
  const char *(*strerror)(int errnum);
  int (*lib_error_set_handler)(snd_lib_error_handler_t handler);
  int (*device_name_hint)(int card, const char *iface, void ***hints);
  char *(*device_name_get_hint)(const void *hint, const char *id);
  int (*device_name_free_hint)(void **hints);
  int (*card_next)(int *card);
  int (*card_get_index)(const char *name);
  int (*card_get_name)(int card, char **name);
  int (*card_get_longname)(int card, char **name);
};

// The library's file name: $DEVPLANE_LIBASOUND when set, else libasound.so.2.
std::string libraryName();

// Loads alsa-lib once per process and keeps it: alsa-lib keeps global state
// (its configuration cache) that must outlive every PCM. Returns nullptr with
// the reason in *error when it cannot be loaded; a later call tries again, so
// installing the library does not need a restart.
const Api *load(std::string *error);

// The last message alsa-lib reported on this thread (such as "Unknown PCM
// foo"), which says more than the error code; empty when there was none.
// Reading it clears it.
std::string takeLastMessage();

}  // namespace alsa
}  // namespace devplane
