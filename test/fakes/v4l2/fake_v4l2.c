/*
 * Fake V4L2 camera, loaded with LD_PRELOAD.
 *
 * Paths listed in DEVPLANE_FAKE_V4L2 behave as a UVC capture node (and its
 * metadata node) so that unmodified capture code can be exercised without
 * hardware. README.md in this directory is the contract: environment, control
 * file, frame header layout, and where the fake differs from a real driver.
 *
 * Design notes
 * - The fd handed out for a fake device is an eventfd. Its counter is kept
 *   non-zero exactly while a filled buffer is waiting to be dequeued (or the
 *   device is gone), so poll/select/epoll on it behave like on a real node
 *   without intercepting them.
 * - MMAP buffers are memfds; mmap() on the fake fd with a QUERYBUF offset is
 *   redirected to the memfd, so the producer writes through its own mapping
 *   and the application reads the same pages.
 * - A producer thread per streaming device paces frames with
 *   CLOCK_MONOTONIC, fills the oldest queued buffer, and drops the frame
 *   (sequence still advances) when none is queued, as uvcvideo does.
 * - All state sits behind one mutex. Frame filling happens outside it so a
 *   4 MB copy never holds up ioctls on other threads.
 * - Hooks that run for every process-wide call (read, close, mmap, munmap)
 *   check a lock-free fd table first so unrelated I/O pays one atomic load.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/videodev2.h>

#define EXPORT __attribute__((visibility("default")))

/* glibc >= 2.33 no longer defines it; the values are fixed per ABI. */
#ifndef _STAT_VER
#if defined(__x86_64__)
#define _STAT_VER 1
#elif defined(__aarch64__) || defined(__riscv) || defined(__loongarch__)
#define _STAT_VER 0
#else
#define _STAT_VER 3
#endif
#endif

#define FD_LIMIT 65536
#define MAX_NODES 32
#define MAX_BUFS 32
#define MAX_MAPS 512
#define PATH_LEN 256
#define CTL_MAX 4096
#define HDR_SIZE 32
#define JPEG_HDR_OFFSET 24
#define VIDEO_MAJOR 81
/* High minors so st_rdev never aliases a real /dev/videoN in /sys/dev/char. */
#define MINOR_BASE 200
#define VIDEO_GID 44
#define META_BUFSIZE 10240

/* ------------------------------------------------------------------ */
/* Real functions                                                      */
/* ------------------------------------------------------------------ */

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real___open_2)(const char *, int);
static int (*real___open64_2)(const char *, int);
static int (*real___openat_2)(int, const char *, int);
static int (*real___openat64_2)(int, const char *, int);
static int (*real_close)(int);
static long (*real_syscall)(long, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off64_t);
static int (*real_munmap)(void *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_stat)(const char *, struct stat *);
static int (*real_stat64)(const char *, struct stat64 *);
static int (*real_lstat)(const char *, struct stat *);
static int (*real_lstat64)(const char *, struct stat64 *);
static int (*real_fstat)(int, struct stat *);
static int (*real_fstat64)(int, struct stat64 *);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static int (*real_fstatat64)(int, const char *, struct stat64 *, int);
static int (*real___xstat)(int, const char *, struct stat *);
static int (*real___xstat64)(int, const char *, struct stat64 *);
static int (*real___lxstat)(int, const char *, struct stat *);
static int (*real___lxstat64)(int, const char *, struct stat64 *);
static int (*real___fxstat)(int, int, struct stat *);
static int (*real___fxstat64)(int, int, struct stat64 *);
static int (*real___fxstatat)(int, int, const char *, struct stat *, int);
static int (*real___fxstatat64)(int, int, const char *, struct stat64 *, int);
static int (*real_statx)(int, const char *, int, unsigned int, struct statx *);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static int (*real_access)(const char *, int);
static int (*real_faccessat)(int, const char *, int, int);
static int (*real_euidaccess)(const char *, int);
static int (*real_eaccess)(const char *, int);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#define RESOLVE(name) (*(void **)&real_##name = dlsym(RTLD_NEXT, #name))

static void resolve_all(void)
{
    RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64);
    RESOLVE(__open_2); RESOLVE(__open64_2); RESOLVE(__openat_2); RESOLVE(__openat64_2);
    RESOLVE(close); RESOLVE(syscall); RESOLVE(ioctl);
    RESOLVE(mmap); RESOLVE(mmap64); RESOLVE(munmap); RESOLVE(read);
    RESOLVE(dup2); RESOLVE(dup3);
    RESOLVE(stat); RESOLVE(stat64); RESOLVE(lstat); RESOLVE(lstat64);
    RESOLVE(fstat); RESOLVE(fstat64); RESOLVE(fstatat); RESOLVE(fstatat64);
    RESOLVE(__xstat); RESOLVE(__xstat64); RESOLVE(__lxstat); RESOLVE(__lxstat64);
    RESOLVE(__fxstat); RESOLVE(__fxstat64); RESOLVE(__fxstatat); RESOLVE(__fxstatat64);
    RESOLVE(statx); RESOLVE(fopen); RESOLVE(fopen64);
    RESOLVE(access); RESOLVE(faccessat); RESOLVE(euidaccess); RESOLVE(eaccess);
}

static inline void init(void) { pthread_once(&g_once, resolve_all); }

/* ------------------------------------------------------------------ */
/* Device description                                                  */
/* ------------------------------------------------------------------ */

struct fmt_info { uint32_t fourcc; const char *desc; uint32_t flags; };
static const struct fmt_info k_formats[] = {
    { V4L2_PIX_FMT_YUYV, "YUYV 4:2:2", 0 },
    { V4L2_PIX_FMT_MJPEG, "Motion-JPEG", V4L2_FMT_FLAG_COMPRESSED },
    { V4L2_PIX_FMT_NV12, "Y/CbCr 4:2:0", 0 },
    { V4L2_PIX_FMT_GREY, "8-bit Greyscale", 0 },
};
#define NFORMATS (int)(sizeof k_formats / sizeof k_formats[0])

struct size_info { uint32_t w, h; };
static const struct size_info k_sizes[] = {
    { 160, 120 }, { 320, 240 }, { 640, 480 }, { 1280, 720 }, { 1920, 1080 },
};
#define NSIZES (int)(sizeof k_sizes / sizeof k_sizes[0])
#define DEFAULT_SIZE 2

/* Descriptor order of a UVC camera: shortest interval first. */
static const uint32_t k_fps[] = { 60, 30, 15 };
#define NFPS (int)(sizeof k_fps / sizeof k_fps[0])
#define DEFAULT_FPS 1

struct ctrl_info {
    uint32_t id;
    const char *name;
    uint32_t type;
    int32_t min, max, step, def;
    /* Which control must be in "manual" for this one to be writable. */
    uint32_t auto_id;
    int32_t manual_value;
};

/* Names follow the pre-5.x uvcvideo wording so that v4l2-ctl style names
 * come out as white_balance_temperature_auto, exposure_auto, focus_auto... */
static const struct ctrl_info k_ctrls[] = {
    { V4L2_CID_USER_CLASS, "User Controls", V4L2_CTRL_TYPE_CTRL_CLASS, 0, 0, 0, 0, 0, 0 },
    { V4L2_CID_BRIGHTNESS, "Brightness", V4L2_CTRL_TYPE_INTEGER, -64, 64, 1, 0, 0, 0 },
    { V4L2_CID_CONTRAST, "Contrast", V4L2_CTRL_TYPE_INTEGER, 0, 64, 1, 32, 0, 0 },
    { V4L2_CID_SATURATION, "Saturation", V4L2_CTRL_TYPE_INTEGER, 0, 128, 1, 64, 0, 0 },
    { V4L2_CID_AUTO_WHITE_BALANCE, "White Balance Temperature, Auto", V4L2_CTRL_TYPE_BOOLEAN, 0, 1, 1, 1, 0, 0 },
    { V4L2_CID_GAIN, "Gain", V4L2_CTRL_TYPE_INTEGER, 0, 100, 1, 0, 0, 0 },
    { V4L2_CID_POWER_LINE_FREQUENCY, "Power Line Frequency", V4L2_CTRL_TYPE_MENU, 0, 2, 1, 1, 0, 0 },
    { V4L2_CID_WHITE_BALANCE_TEMPERATURE, "White Balance Temperature", V4L2_CTRL_TYPE_INTEGER, 2800, 6500, 1, 4600,
      V4L2_CID_AUTO_WHITE_BALANCE, 0 },
    { V4L2_CID_SHARPNESS, "Sharpness", V4L2_CTRL_TYPE_INTEGER, 0, 6, 1, 3, 0, 0 },
    { V4L2_CID_BACKLIGHT_COMPENSATION, "Backlight Compensation", V4L2_CTRL_TYPE_INTEGER, 0, 2, 1, 1, 0, 0 },
    { V4L2_CID_CAMERA_CLASS, "Camera Controls", V4L2_CTRL_TYPE_CTRL_CLASS, 0, 0, 0, 0, 0, 0 },
    { V4L2_CID_EXPOSURE_AUTO, "Exposure, Auto", V4L2_CTRL_TYPE_MENU, 0, 3, 1, V4L2_EXPOSURE_APERTURE_PRIORITY, 0, 0 },
    { V4L2_CID_EXPOSURE_ABSOLUTE, "Exposure (Absolute)", V4L2_CTRL_TYPE_INTEGER, 3, 2047, 1, 250,
      V4L2_CID_EXPOSURE_AUTO, V4L2_EXPOSURE_MANUAL },
    { V4L2_CID_EXPOSURE_AUTO_PRIORITY, "Exposure, Auto Priority", V4L2_CTRL_TYPE_BOOLEAN, 0, 1, 1, 0, 0, 0 },
    { V4L2_CID_FOCUS_ABSOLUTE, "Focus (absolute)", V4L2_CTRL_TYPE_INTEGER, 0, 250, 5, 0,
      V4L2_CID_FOCUS_AUTO, 0 },
    { V4L2_CID_FOCUS_AUTO, "Focus, Auto", V4L2_CTRL_TYPE_BOOLEAN, 0, 1, 1, 1, 0, 0 },
};
#define NCTRLS (int)(sizeof k_ctrls / sizeof k_ctrls[0])

static const char *menu_name(uint32_t id, uint32_t index)
{
    if (id == V4L2_CID_POWER_LINE_FREQUENCY) {
        static const char *m[] = { "Disabled", "50 Hz", "60 Hz" };
        return index < 3 ? m[index] : NULL;
    }
    if (id == V4L2_CID_EXPOSURE_AUTO) {
        /* uvcvideo hides the modes the camera lacks; most webcams only
         * offer manual and aperture priority. */
        if (index == V4L2_EXPOSURE_MANUAL) return "Manual Mode";
        if (index == V4L2_EXPOSURE_APERTURE_PRIORITY) return "Aperture Priority Mode";
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

enum { KIND_CAPTURE = 0, KIND_META = 1 };
enum { B_DEQUEUED = 0, B_QUEUED, B_ACTIVE, B_DONE };

struct fifo { int item[MAX_BUFS]; int head, count; };

static void fifo_push(struct fifo *q, int v) { q->item[(q->head + q->count++) % MAX_BUFS] = v; }
static int fifo_pop(struct fifo *q)
{
    int v = q->item[q->head];
    q->head = (q->head + 1) % MAX_BUFS;
    q->count--;
    return v;
}
static void fifo_clear(struct fifo *q) { q->head = q->count = 0; }

struct buf {
    int state;
    int memfd;
    uint8_t *kaddr;      /* where the producer writes */
    size_t length;       /* v4l2_buffer.length */
    uint32_t offset;     /* mmap cookie */
    unsigned long userptr;
    uint32_t bytesused, sequence, extra_flags;
    uint64_t ts_ns;
    int eio;
};

struct node;
struct ffd;

struct stream {
    struct node *node;
    struct ffd *owner;
    int camera;
    uint64_t alloc_id;
    uint32_t memory;
    int nbufs;
    struct buf bufs[MAX_BUFS];
    struct fifo queued, done;
    struct v4l2_pix_format pix;
    uint64_t interval_ns;
    int streaming;
    int thread_running;
    int joining;
    int stop;
    pthread_t thread;
    pthread_cond_t cv;
    uint32_t sequence;
    uint32_t dropped;
    int waiters;             /* threads blocked in DQBUF on cv */
    uint8_t *line;           /* pattern source row */
    uint8_t *jpeg_prefix;
    size_t jpeg_prefix_len;
};

struct node {
    int used;
    int configured;
    int kind;
    int camera;
    int minor;
    char orig_path[PATH_LEN];
    char alt_path[PATH_LEN];
    char cur_path[PATH_LEN];
    int present;
    uint64_t gone_since_ns;
    unsigned gen;
    int refs;
    struct timespec born;
    struct v4l2_pix_format pix;
    int fps_index;
    int32_t ctrl_val[NCTRLS];
    int prios[4];           /* open fds per v4l2_priority */
    struct stream *st;
};

struct ffd {
    int fd;
    struct node *node;
    unsigned gen;
    int ev_pending;
    int inflight;
    int closing;
    uint32_t prio;
    struct stream *st;
    struct ffd *next;
};

struct ctl {
    int fast, slow_ms, busy, eacces;
    long reappear_after_ms, unplug_at, eio_at, error_at;
    int unplug_now;
    uint32_t formats_mask;
};

struct mapping { void *addr; size_t len; uint64_t alloc_id; int index; };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_maplock = PTHREAD_MUTEX_INITIALIZER;
static struct ffd *_Atomic g_fdtab[FD_LIMIT];
static struct ffd *g_fds;
static struct node g_nodes[MAX_NODES];
static char g_env_paths[CTL_MAX], g_env_reappear[CTL_MAX], g_env_options[CTL_MAX];
static int g_env_seen;
static struct ctl g_ctl_env, g_ctl_file, g_ctl;
static unsigned g_has_env, g_has_file;
static char g_ctl_path[PATH_LEN];
static char g_ctl_content[CTL_MAX];
static long long g_ctl_mtime_sec = -1, g_ctl_mtime_nsec = -1;
static uint64_t g_ctl_last_read;
static int arm_unplug_at, arm_eio, arm_error, arm_unplug_now;
static uint64_t g_alloc_counter;
static struct mapping g_maps[MAX_MAPS];
static atomic_int g_nmaps;
static long g_page;
static uint32_t g_kernel_version;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t page_align(size_t n)
{
    if (!g_page) g_page = sysconf(_SC_PAGESIZE);
    return (n + (size_t)g_page - 1) & ~((size_t)g_page - 1);
}

static struct ffd *fd_lookup(int fd)
{
    if (fd < 0 || fd >= FD_LIMIT) return NULL;
    return atomic_load_explicit(&g_fdtab[fd], memory_order_acquire);
}

static int fd_dead(const struct ffd *f) { return f->gen != f->node->gen || !f->node->present; }

/* ------------------------------------------------------------------ */
/* Control file and environment                                        */
/* ------------------------------------------------------------------ */

enum {
    HAS_FAST = 1u << 0, HAS_SLOW = 1u << 1, HAS_BUSY = 1u << 2, HAS_EACCES = 1u << 3,
    HAS_REAPPEAR = 1u << 4, HAS_UNPLUG_AT = 1u << 5, HAS_EIO = 1u << 6, HAS_ERROR = 1u << 7,
    HAS_UNPLUG = 1u << 8, HAS_FORMATS = 1u << 9,
};

static void ctl_defaults(struct ctl *c)
{
    memset(c, 0, sizeof *c);
    c->reappear_after_ms = c->unplug_at = c->eio_at = c->error_at = -1;
}

static uint32_t parse_formats(const char *v)
{
    uint32_t mask = 0;
    char tok[8];
    while (*v) {
        size_t n = strcspn(v, ",+/|");
        if (n > 0 && n < sizeof tok) {
            memcpy(tok, v, n);
            tok[n] = 0;
            for (int i = 0; i < NFORMATS; i++) {
                char cc[5] = { (char)(k_formats[i].fourcc & 0xff), (char)((k_formats[i].fourcc >> 8) & 0xff),
                               (char)((k_formats[i].fourcc >> 16) & 0xff), (char)(k_formats[i].fourcc >> 24), 0 };
                if (strcasecmp(tok, cc) == 0 || (strcasecmp(tok, "MJPEG") == 0 && i == 1))
                    mask |= 1u << i;
            }
        }
        v += n;
        if (*v) v++;
    }
    return mask;
}

/* Items are key=value, separated by newlines, ';' or whitespace; '#' starts a comment. */
static unsigned parse_ctl(const char *text, struct ctl *c)
{
    unsigned has = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';') p++;
        if (!*p) break;
        if (*p == '#') {
            while (*p && *p != '\n') p++;
            continue;
        }
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';') p++;
        char item[256];
        size_t n = (size_t)(p - start);
        if (n >= sizeof item) continue;
        memcpy(item, start, n);
        item[n] = 0;
        char *eq = strchr(item, '=');
        if (!eq) continue;
        *eq = 0;
        const char *k = item, *v = eq + 1;
        long val = strtol(v, NULL, 10);
        if (!strcmp(k, "fast")) { c->fast = val != 0; has |= HAS_FAST; }
        else if (!strcmp(k, "slow_ms")) { c->slow_ms = val > 0 ? (int)val : 0; has |= HAS_SLOW; }
        else if (!strcmp(k, "busy")) { c->busy = val != 0; has |= HAS_BUSY; }
        else if (!strcmp(k, "eacces")) { c->eacces = val != 0; has |= HAS_EACCES; }
        else if (!strcmp(k, "reappear_after_ms")) { c->reappear_after_ms = val; has |= HAS_REAPPEAR; }
        else if (!strcmp(k, "unplug_at")) { c->unplug_at = val; has |= HAS_UNPLUG_AT; }
        else if (!strcmp(k, "eio_at")) { c->eio_at = val; has |= HAS_EIO; }
        else if (!strcmp(k, "error_at")) { c->error_at = val; has |= HAS_ERROR; }
        else if (!strcmp(k, "unplug")) { c->unplug_now = val != 0; has |= HAS_UNPLUG; }
        else if (!strcmp(k, "formats")) { c->formats_mask = parse_formats(v); has |= HAS_FORMATS; }
    }
    return has;
}

static void ctl_merge(void)
{
    struct ctl m;
    ctl_defaults(&m);
#define TAKE(flag, field) \
    if (g_has_file & (flag)) m.field = g_ctl_file.field; \
    else if (g_has_env & (flag)) m.field = g_ctl_env.field;
    TAKE(HAS_FAST, fast) TAKE(HAS_SLOW, slow_ms) TAKE(HAS_BUSY, busy) TAKE(HAS_EACCES, eacces)
    TAKE(HAS_REAPPEAR, reappear_after_ms) TAKE(HAS_UNPLUG_AT, unplug_at) TAKE(HAS_EIO, eio_at)
    TAKE(HAS_ERROR, error_at) TAKE(HAS_UNPLUG, unplug_now) TAKE(HAS_FORMATS, formats_mask)
#undef TAKE
    g_ctl = m;
}

static void arm_from(unsigned has, const struct ctl *c)
{
    if ((has & HAS_UNPLUG_AT) && c->unplug_at >= 0) arm_unplug_at = 1;
    if ((has & HAS_EIO) && c->eio_at >= 0) arm_eio = 1;
    if ((has & HAS_ERROR) && c->error_at >= 0) arm_error = 1;
    if ((has & HAS_UNPLUG) && c->unplug_now) arm_unplug_now = 1;
}

static void do_unplug(int camera);

static int env_changed(const char *name, char *cache)
{
    const char *v = getenv(name);
    if (!v) v = "";
    if (strlen(v) >= CTL_MAX) return 0;
    if (!strcmp(v, cache)) return 0;
    strcpy(cache, v);
    return 1;
}

/* Reads the control file (at most every 2 ms unless forced). Lock held. */
static void ctl_refresh(int force)
{
    uint64_t now = now_ns();
    if (!force && now - g_ctl_last_read < 2000000ull) return;
    g_ctl_last_read = now;

    if (env_changed("DEVPLANE_FAKE_V4L2_OPTIONS", g_env_options)) {
        ctl_defaults(&g_ctl_env);
        g_has_env = parse_ctl(g_env_options, &g_ctl_env);
        arm_from(g_has_env, &g_ctl_env);
    }

    const char *path = getenv("DEVPLANE_FAKE_V4L2_CONTROL");
    char content[CTL_MAX];
    long long msec = -1, mnsec = -1;
    content[0] = 0;
    if (path && *path && strlen(path) < PATH_LEN) {
        if (strcmp(path, g_ctl_path) != 0) {
            strcpy(g_ctl_path, path);
            g_ctl_mtime_sec = -2;   /* force a re-parse for a new file */
        }
        int fd = real_open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            struct statx sx;
            if (real_syscall(SYS_statx, (long)fd, (long)"", (long)AT_EMPTY_PATH, (long)STATX_MTIME, (long)&sx) == 0) {
                msec = sx.stx_mtime.tv_sec;
                mnsec = sx.stx_mtime.tv_nsec;
            }
            size_t got = 0;
            for (;;) {
                ssize_t r = real_read(fd, content + got, sizeof content - 1 - got);
                if (r <= 0) break;
                got += (size_t)r;
                if (got >= sizeof content - 1) break;
            }
            content[got] = 0;
            real_close(fd);
        }
    } else if (g_ctl_path[0]) {
        g_ctl_path[0] = 0;
        g_ctl_mtime_sec = -2;
    }
    if (strcmp(content, g_ctl_content) != 0 || msec != g_ctl_mtime_sec || mnsec != g_ctl_mtime_nsec) {
        strcpy(g_ctl_content, content);
        g_ctl_mtime_sec = msec;
        g_ctl_mtime_nsec = mnsec;
        ctl_defaults(&g_ctl_file);
        g_has_file = parse_ctl(content, &g_ctl_file);
        arm_from(g_has_file, &g_ctl_file);
    }
    ctl_merge();

    if (arm_unplug_now && g_ctl.unplug_now) {
        arm_unplug_now = 0;
        for (int i = 0; i < MAX_NODES; i++)
            if (g_nodes[i].used && g_nodes[i].configured && g_nodes[i].present)
                do_unplug(g_nodes[i].camera);
    }
}

static void node_reset_device(struct node *n)
{
    memset(&n->pix, 0, sizeof n->pix);
    n->pix.pixelformat = k_formats[0].fourcc;
    n->pix.width = k_sizes[DEFAULT_SIZE].w;
    n->pix.height = k_sizes[DEFAULT_SIZE].h;
    n->fps_index = DEFAULT_FPS;
    for (int i = 0; i < NCTRLS; i++) n->ctrl_val[i] = k_ctrls[i].def;
    clock_gettime(CLOCK_REALTIME, &n->born);
}

static void fill_pix(struct v4l2_pix_format *pix);

static struct node *node_alloc(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (!g_nodes[i].used) return &g_nodes[i];
    for (int i = 0; i < MAX_NODES; i++) {
        struct node *n = &g_nodes[i];
        if (!n->configured && n->refs == 0 && !n->st) return n;
    }
    return NULL;
}

/* Splits "a,b,c" into entries; returns the count. */
static int split_list(const char *s, char out[][PATH_LEN], int max)
{
    int n = 0;
    while (*s && n < max) {
        size_t len = strcspn(s, ",");
        while (len > 0 && (*s == ' ' || *s == '\t')) { s++; len--; }
        size_t l = len;
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\n')) l--;
        if (l > 0 && l < PATH_LEN) {
            memcpy(out[n], s, l);
            out[n][l] = 0;
            n++;
        }
        s += len;
        if (*s == ',') s++;
    }
    return n;
}

/* Rebuilds the node table when DEVPLANE_FAKE_V4L2 or ..._REAPPEAR_AS change. Lock held. */
static void config_refresh(void)
{
    int a = env_changed("DEVPLANE_FAKE_V4L2", g_env_paths);
    int b = env_changed("DEVPLANE_FAKE_V4L2_REAPPEAR_AS", g_env_reappear);
    if (!a && !b && g_env_seen) return;
    g_env_seen = 1;

    static char entries[MAX_NODES][PATH_LEN], alts[MAX_NODES][PATH_LEN];
    int ne = split_list(g_env_paths, entries, MAX_NODES);
    int na = split_list(g_env_reappear, alts, MAX_NODES);

    for (int i = 0; i < MAX_NODES; i++) g_nodes[i].configured = 0;

    int camera = -1, last_kind = KIND_META;
    for (int i = 0; i < ne; i++) {
        char *path = entries[i];
        int kind;
        char *colon = strrchr(path, ':');
        if (colon && !strcmp(colon, ":meta")) { *colon = 0; kind = KIND_META; }
        else if (colon && !strcmp(colon, ":capture")) { *colon = 0; kind = KIND_CAPTURE; }
        else kind = last_kind == KIND_CAPTURE ? KIND_META : KIND_CAPTURE;
        /* A metadata node belongs to the camera of the capture node before it. */
        if (kind == KIND_CAPTURE || last_kind != KIND_CAPTURE) camera++;
        last_kind = kind;

        struct node *n = NULL;
        for (int j = 0; j < MAX_NODES; j++)
            if (g_nodes[j].used && g_nodes[j].kind == kind && !strcmp(g_nodes[j].orig_path, path)) {
                n = &g_nodes[j];
                break;
            }
        if (!n) {
            n = node_alloc();
            if (!n) break;
            memset(n, 0, sizeof *n);
            n->used = 1;
            n->kind = kind;
            strcpy(n->orig_path, path);
            strcpy(n->cur_path, path);
            n->present = 1;
            node_reset_device(n);
            fill_pix(&n->pix);
        }
        n->configured = 1;
        n->camera = camera;
        n->minor = MINOR_BASE + i;
        if (i < na) strcpy(n->alt_path, alts[i]);
        else n->alt_path[0] = 0;
    }
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

static const struct fmt_info *fmt_find(uint32_t fourcc)
{
    for (int i = 0; i < NFORMATS; i++)
        if (k_formats[i].fourcc == fourcc && (!g_ctl.formats_mask || (g_ctl.formats_mask & (1u << i))))
            return &k_formats[i];
    return NULL;
}

static const struct fmt_info *fmt_by_index(uint32_t index)
{
    uint32_t k = 0;
    for (int i = 0; i < NFORMATS; i++) {
        if (g_ctl.formats_mask && !(g_ctl.formats_mask & (1u << i))) continue;
        if (k++ == index) return &k_formats[i];
    }
    return NULL;
}

static void fill_pix(struct v4l2_pix_format *pix)
{
    uint32_t w = pix->width, h = pix->height;
    pix->field = V4L2_FIELD_NONE;
    switch (pix->pixelformat) {
    case V4L2_PIX_FMT_YUYV: pix->bytesperline = w * 2; pix->sizeimage = w * h * 2; break;
    case V4L2_PIX_FMT_NV12: pix->bytesperline = w; pix->sizeimage = w * h * 3 / 2; break;
    case V4L2_PIX_FMT_GREY: pix->bytesperline = w; pix->sizeimage = w * h; break;
    default: pix->bytesperline = 0; pix->sizeimage = w * h * 2; break; /* MJPEG: worst case, as UVC reports */
    }
    pix->colorspace = V4L2_COLORSPACE_SRGB;
    pix->priv = V4L2_PIX_FMT_PRIV_MAGIC;
    pix->flags = 0;
    pix->ycbcr_enc = V4L2_YCBCR_ENC_601;
    pix->quantization = V4L2_QUANTIZATION_DEFAULT;
    pix->xfer_func = V4L2_XFER_FUNC_SRGB;
}

/* Closest frame size by the uvcvideo metric; unknown formats fall back to the first one. */
static void try_pix(struct v4l2_pix_format *pix)
{
    const struct fmt_info *f = fmt_find(pix->pixelformat);
    if (!f) f = fmt_by_index(0);
    if (!f) f = &k_formats[0];
    uint64_t best = UINT64_MAX;
    int bi = DEFAULT_SIZE;
    for (int i = 0; i < NSIZES; i++) {
        uint64_t w = k_sizes[i].w, h = k_sizes[i].h, rw = pix->width, rh = pix->height;
        uint64_t mw = w < rw ? w : rw, mh = h < rh ? h : rh;
        uint64_t d = w * h + rw * rh - 2 * mw * mh;
        if (d < best) { best = d; bi = i; }
    }
    memset(pix, 0, sizeof *pix);
    pix->pixelformat = f->fourcc;
    pix->width = k_sizes[bi].w;
    pix->height = k_sizes[bi].h;
    fill_pix(pix);
}

static void put_u16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static void write_header(uint8_t *p, uint32_t seq, uint64_t ns, const struct v4l2_pix_format *pix,
                         uint32_t bytes, uint32_t dropped)
{
    memcpy(p, "DPFK", 4);
    put_u32(p + 4, seq);
    put_u64(p + 8, ns);
    put_u32(p + 16, pix->pixelformat);
    put_u16(p + 20, pix->width);
    put_u16(p + 22, pix->height);
    put_u32(p + 24, bytes);
    put_u16(p + 28, 1);
    put_u16(p + 30, dropped > 0xffff ? 0xffff : dropped);
}

/* JPEG tables: ITU-T T.81 Annex K.3 (typical Huffman tables). */
static const uint8_t k_dc_lum_bits[16] = { 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
static const uint8_t k_dc_chr_bits[16] = { 0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 };
static const uint8_t k_dc_vals[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
static const uint8_t k_ac_lum_bits[16] = { 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d };
static const uint8_t k_ac_lum_vals[162] = {
    0x01,0x02,0x03,0x00,0x04,0x11,0x05,0x12,0x21,0x31,0x41,0x06,0x13,0x51,0x61,0x07,0x22,0x71,0x14,0x32,0x81,0x91,0xa1,0x08,
    0x23,0x42,0xb1,0xc1,0x15,0x52,0xd1,0xf0,0x24,0x33,0x62,0x72,0x82,0x09,0x0a,0x16,0x17,0x18,0x19,0x1a,0x25,0x26,0x27,0x28,
    0x29,0x2a,0x34,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,0x44,0x45,0x46,0x47,0x48,0x49,0x4a,0x53,0x54,0x55,0x56,0x57,0x58,0x59,
    0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,0x6a,0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x83,0x84,0x85,0x86,0x87,0x88,0x89,
    0x8a,0x92,0x93,0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,0xb5,0xb6,
    0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,0xd7,0xd8,0xd9,0xda,0xe1,0xe2,
    0xe3,0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf1,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9,0xfa
};
static const uint8_t k_ac_chr_bits[16] = { 0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77 };
static const uint8_t k_ac_chr_vals[162] = {
    0x00,0x01,0x02,0x03,0x11,0x04,0x05,0x21,0x31,0x06,0x12,0x41,0x51,0x07,0x61,0x71,0x13,0x22,0x32,0x81,0x08,0x14,0x42,0x91,
    0xa1,0xb1,0xc1,0x09,0x23,0x33,0x52,0xf0,0x15,0x62,0x72,0xd1,0x0a,0x16,0x24,0x34,0xe1,0x25,0xf1,0x17,0x18,0x19,0x1a,0x26,
    0x27,0x28,0x29,0x2a,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,0x44,0x45,0x46,0x47,0x48,0x49,0x4a,0x53,0x54,0x55,0x56,0x57,0x58,
    0x59,0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,0x6a,0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x82,0x83,0x84,0x85,0x86,0x87,
    0x88,0x89,0x8a,0x92,0x93,0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,
    0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,0xd7,0xd8,0xd9,0xda,
    0xe2,0xe3,0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9,0xfa
};

struct huff { uint16_t code[256]; uint8_t len[256]; };
static struct huff g_dc_lum, g_dc_chr, g_ac_lum, g_ac_chr;
static pthread_once_t g_huff_once = PTHREAD_ONCE_INIT;

static void huff_build(struct huff *h, const uint8_t bits[16], const uint8_t *vals)
{
    unsigned code = 0, k = 0;
    for (int l = 1; l <= 16; l++) {
        for (int i = 0; i < bits[l - 1]; i++) {
            h->code[vals[k]] = (uint16_t)code;
            h->len[vals[k]] = (uint8_t)l;
            k++;
            code++;
        }
        code <<= 1;
    }
}

static void huff_init(void)
{
    huff_build(&g_dc_lum, k_dc_lum_bits, k_dc_vals);
    huff_build(&g_dc_chr, k_dc_chr_bits, k_dc_vals);
    huff_build(&g_ac_lum, k_ac_lum_bits, k_ac_lum_vals);
    huff_build(&g_ac_chr, k_ac_chr_bits, k_ac_chr_vals);
}

struct bitw { uint8_t *p, *end; uint32_t acc; int n; };

static void bw_put(struct bitw *b, uint32_t code, int len)
{
    b->acc = (b->acc << len) | (code & ((1u << len) - 1));
    b->n += len;
    while (b->n >= 8) {
        uint8_t c = (uint8_t)(b->acc >> (b->n - 8));
        if (b->p + 2 <= b->end) {
            *b->p++ = c;
            if (c == 0xff) *b->p++ = 0;   /* byte stuffing */
        }
        b->n -= 8;
    }
    b->acc &= (1u << b->n) - 1;
}

static void bw_dc(struct bitw *b, const struct huff *h, int diff)
{
    int mag = diff < 0 ? -diff : diff, cat = 0;
    while (mag >> cat) cat++;
    bw_put(b, h->code[cat], h->len[cat]);
    if (cat) bw_put(b, (uint32_t)(diff < 0 ? diff - 1 : diff), cat);
}

static uint8_t *put_marker_seg(uint8_t *p, uint8_t marker, const uint8_t *data, size_t len)
{
    *p++ = 0xff;
    *p++ = marker;
    *p++ = (uint8_t)((len + 2) >> 8);
    *p++ = (uint8_t)(len + 2);
    memcpy(p, data, len);
    return p + len;
}

/* Everything from SOI to the end of the SOS header; the APP4 payload is patched per frame. */
static size_t jpeg_prefix(uint8_t *out, uint32_t w, uint32_t h)
{
    uint8_t *p = out, tmp[512];
    *p++ = 0xff; *p++ = 0xd8;
    static const uint8_t jfif[14] = { 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0 };
    p = put_marker_seg(p, 0xe0, jfif, sizeof jfif);
    memset(tmp, 0, HDR_SIZE);
    p = put_marker_seg(p, 0xe4, tmp, HDR_SIZE);     /* header lands at offset 24 */
    /* Flat tables: DC step 8 makes a quantized DC equal to (level - 128). */
    size_t k = 0;
    for (int t = 0; t < 2; t++) {
        tmp[k++] = (uint8_t)t;
        for (int i = 0; i < 64; i++) tmp[k++] = i == 0 ? 8 : 16;
    }
    p = put_marker_seg(p, 0xdb, tmp, k);
    const uint8_t sof[15] = { 8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w, 3,
                              1, 0x21, 0, 2, 0x11, 1, 3, 0x11, 1 };
    p = put_marker_seg(p, 0xc0, sof, sizeof sof);
    k = 0;
    struct { uint8_t tc; const uint8_t *bits, *vals; size_t nv; } dht[4] = {
        { 0x00, k_dc_lum_bits, k_dc_vals, 12 }, { 0x10, k_ac_lum_bits, k_ac_lum_vals, 162 },
        { 0x01, k_dc_chr_bits, k_dc_vals, 12 }, { 0x11, k_ac_chr_bits, k_ac_chr_vals, 162 },
    };
    for (int t = 0; t < 4; t++) {
        tmp[k++] = dht[t].tc;
        memcpy(tmp + k, dht[t].bits, 16);
        k += 16;
        memcpy(tmp + k, dht[t].vals, dht[t].nv);
        k += dht[t].nv;
    }
    p = put_marker_seg(p, 0xc4, tmp, k);
    static const uint8_t sos[10] = { 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0 };
    p = put_marker_seg(p, 0xda, sos, sizeof sos);
    return (size_t)(p - out);
}

/* Baseline 4:2:2 JPEG whose 8x8 luma blocks are flat at level
 * ((8*bx + 8*by + seq) & 0xff): the same diagonal gradient as the raw
 * formats, sampled per block, with neutral chroma. */
static size_t make_jpeg(const struct stream *s, uint8_t *out, size_t cap, uint32_t seq)
{
    uint32_t w = s->pix.width, h = s->pix.height;
    if (cap < s->jpeg_prefix_len + 16) return 0;
    memcpy(out, s->jpeg_prefix, s->jpeg_prefix_len);
    struct bitw b = { out + s->jpeg_prefix_len, out + cap - 2, 0, 0 };
    uint32_t mcux = (w + 15) / 16, mcuy = (h + 7) / 8;
    int pred_y = 0, pred_cb = 0, pred_cr = 0;
    for (uint32_t my = 0; my < mcuy; my++) {
        for (uint32_t mx = 0; mx < mcux; mx++) {
            for (uint32_t k = 0; k < 2; k++) {
                int level = (int)((8 * (2 * mx + k) + 8 * my + seq) & 0xff);
                int dc = level - 128;
                bw_dc(&b, &g_dc_lum, dc - pred_y);
                pred_y = dc;
                bw_put(&b, g_ac_lum.code[0], g_ac_lum.len[0]);
            }
            bw_dc(&b, &g_dc_chr, 0 - pred_cb);
            pred_cb = 0;
            bw_put(&b, g_ac_chr.code[0], g_ac_chr.len[0]);
            bw_dc(&b, &g_dc_chr, 0 - pred_cr);
            pred_cr = 0;
            bw_put(&b, g_ac_chr.code[0], g_ac_chr.len[0]);
        }
    }
    if (b.n > 0) bw_put(&b, (1u << (8 - b.n)) - 1, 8 - b.n);
    uint8_t *p = b.p;
    *p++ = 0xff;
    *p++ = 0xd9;
    return (size_t)(p - out);
}

static uint32_t fill_frame(struct stream *s, struct buf *b, uint32_t seq, uint64_t ts, uint32_t dropped)
{
    const struct v4l2_pix_format *pix = &s->pix;
    uint32_t w = pix->width, h = pix->height, bytes = 0;
    uint8_t *dst = b->kaddr;
    size_t cap = b->length;
    if (!dst || cap < HDR_SIZE) return 0;
    switch (pix->pixelformat) {
    case V4L2_PIX_FMT_YUYV:
        if (cap < pix->sizeimage) return 0;
        for (uint32_t y = 0; y < h; y++)
            memcpy(dst + (size_t)y * pix->bytesperline, s->line + 2 * ((y + seq) & 0xff), (size_t)w * 2);
        bytes = pix->sizeimage;
        write_header(dst, seq, ts, pix, bytes, dropped);
        break;
    case V4L2_PIX_FMT_NV12:
    case V4L2_PIX_FMT_GREY:
        if (cap < pix->sizeimage) return 0;
        for (uint32_t y = 0; y < h; y++)
            memcpy(dst + (size_t)y * w, s->line + ((y + seq) & 0xff), w);
        if (pix->pixelformat == V4L2_PIX_FMT_NV12) memset(dst + (size_t)w * h, 128, (size_t)w * h / 2);
        bytes = pix->sizeimage;
        write_header(dst, seq, ts, pix, bytes, dropped);
        break;
    case V4L2_PIX_FMT_MJPEG:
        bytes = (uint32_t)make_jpeg(s, dst, cap, seq);
        if (bytes) write_header(dst + JPEG_HDR_OFFSET, seq, ts, pix, bytes, dropped);
        break;
    }
    return bytes;
}

/* ------------------------------------------------------------------ */
/* Streaming                                                           */
/* ------------------------------------------------------------------ */

/* The eventfd is readable exactly when poll() on a real node returns at
 * once: a filled buffer waits, the queue is not streaming (the kernel
 * answers POLLERR then), or the device is gone. Lock held. */
static int fd_readable(const struct ffd *f)
{
    if (fd_dead(f)) return 1;
    const struct stream *s = f->st;
    return !s || !s->streaming || s->done.count > 0;
}

static void ev_sync(struct ffd *f)
{
    if (!f) return;
    int want = fd_readable(f);
    if (want && !f->ev_pending) {
        eventfd_write(f->fd, 1);
        f->ev_pending = 1;
    } else if (!want && f->ev_pending) {
        eventfd_t v;
        eventfd_read(f->fd, &v);
        f->ev_pending = 0;
    }
}

/* A new frame bumps the counter even if it is already non-zero, so that
 * edge-triggered epoll users see one edge per frame. */
static void ev_kick(struct ffd *f)
{
    eventfd_write(f->fd, 1);
    f->ev_pending = 1;
}

/* Unplugs every node of a camera: open fds turn to ENODEV, paths vanish. Lock held. */
static void do_unplug(int camera)
{
    uint64_t now = now_ns();
    for (int i = 0; i < MAX_NODES; i++) {
        struct node *n = &g_nodes[i];
        if (!n->used || !n->configured || n->camera != camera || !n->present) continue;
        n->present = 0;
        n->gone_since_ns = now;
        n->gen++;
        if (n->st) {
            n->st->stop = 1;
            pthread_cond_broadcast(&n->st->cv);
            n->st = NULL;   /* stays with its owner fd until that fd is closed */
        }
    }
    for (struct ffd *f = g_fds; f; f = f->next)
        if (f->node->camera == camera && f->node->configured) {
            ev_sync(f);
            if (f->st) pthread_cond_broadcast(&f->st->cv);
        }
}

static void node_check_reappear(struct node *n)
{
    if (n->present || !n->configured || g_ctl.reappear_after_ms < 0) return;
    if (now_ns() - n->gone_since_ns < (uint64_t)g_ctl.reappear_after_ms * 1000000ull) return;
    for (int i = 0; i < MAX_NODES; i++) {
        struct node *m = &g_nodes[i];
        if (!m->used || !m->configured || m->camera != n->camera || m->present) continue;
        m->present = 1;
        /* Re-enumeration under another name also means another minor. */
        if (m->alt_path[0] && strcmp(m->cur_path, m->alt_path) != 0) {
            strcpy(m->cur_path, m->alt_path);
            m->minor += MAX_NODES;
        }
        node_reset_device(m);
        fill_pix(&m->pix);
    }
}

static void timespec_from_ns(struct timespec *ts, uint64_t ns)
{
    ts->tv_sec = (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

static void *producer(void *arg)
{
    struct stream *s = arg;
    pthread_mutex_lock(&g_lock);
    uint64_t next = 0;
    int started = 0;
    while (!s->stop) {
        uint64_t interval = (g_ctl.fast ? 0 : s->interval_ns) + (uint64_t)g_ctl.slow_ms * 1000000ull;
        uint64_t now = now_ns();
        if (!started) {
            next = now + interval;
            started = 1;
        }
        if (g_ctl.fast && s->queued.count == 0) {
            /* Unpaced: a frame is made as soon as a buffer is there, none are dropped. */
            pthread_cond_wait(&s->cv, &g_lock);
            continue;
        }
        if (g_ctl.fast && interval == 0) next = now;
        if (now < next) {
            struct timespec ts;
            timespec_from_ns(&ts, next);
            pthread_cond_timedwait(&s->cv, &g_lock, &ts);
            continue;
        }
        /* The sensor keeps its own clock: a late wake-up delivers the frame
         * late but stamped with the time it was due, and the schedule keeps
         * its phase. After a stall of over a second (a stopped process),
         * the missed frames count as lost rather than being replayed. */
        if (interval > 0 && now - next > 1000000000ull) {
            uint64_t missed = (now - next) / interval;
            s->sequence += (uint32_t)missed;
            s->dropped += (uint32_t)missed;
            next += missed * interval;
        }
        uint64_t due = next;
        next += interval;

        ctl_refresh(0);
        if (s->stop) break;
        uint32_t seq = s->sequence++;
        if (arm_unplug_at && g_ctl.unplug_at >= 0 && seq >= (uint64_t)g_ctl.unplug_at) {
            arm_unplug_at = 0;
            do_unplug(s->camera);
            break;
        }
        if (s->queued.count == 0) {
            s->dropped++;
            continue;
        }
        struct buf *b = &s->bufs[fifo_pop(&s->queued)];
        b->state = B_ACTIVE;
        b->eio = 0;
        b->extra_flags = 0;
        if (arm_eio && g_ctl.eio_at >= 0 && seq >= (uint64_t)g_ctl.eio_at) {
            arm_eio = 0;
            b->eio = 1;
        }
        if (arm_error && g_ctl.error_at >= 0 && seq >= (uint64_t)g_ctl.error_at) {
            arm_error = 0;
            b->extra_flags = V4L2_BUF_FLAG_ERROR;
        }
        uint32_t dropped = s->dropped;
        uint64_t ts = due;
        pthread_mutex_unlock(&g_lock);
        uint32_t bytes = fill_frame(s, b, seq, ts, dropped);
        pthread_mutex_lock(&g_lock);
        b->bytesused = bytes;
        b->sequence = seq;
        b->ts_ns = ts;
        b->state = B_DONE;
        fifo_push(&s->done, (int)(b - s->bufs));
        if (s->owner && !fd_dead(s->owner)) ev_kick(s->owner);
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

/* Stops the producer and returns every buffer to userspace ownership. Lock held; may drop it. */
static void stream_stop(struct stream *s)
{
    s->streaming = 0;
    pthread_cond_broadcast(&s->cv);
    if (s->thread_running) {
        s->stop = 1;
        s->joining = 1;
        pthread_t t = s->thread;
        s->thread_running = 0;
        pthread_mutex_unlock(&g_lock);
        pthread_join(t, NULL);
        pthread_mutex_lock(&g_lock);
        s->joining = 0;
        s->stop = 0;
    }
    fifo_clear(&s->queued);
    fifo_clear(&s->done);
    for (int i = 0; i < s->nbufs; i++) s->bufs[i].state = B_DEQUEUED;
    ev_sync(s->owner);
}

static void stream_free_bufs(struct stream *s)
{
    for (int i = 0; i < s->nbufs; i++) {
        struct buf *b = &s->bufs[i];
        /* Closing the memfd leaves userspace mappings valid (orphaned buffers). */
        if (s->memory == V4L2_MEMORY_MMAP) {
            if (b->kaddr) real_munmap(b->kaddr, page_align(b->length));
            if (b->memfd >= 0) real_close(b->memfd);
        }
        memset(b, 0, sizeof *b);
        b->memfd = -1;
    }
    s->nbufs = 0;
    fifo_clear(&s->queued);
    fifo_clear(&s->done);
}

static void stream_destroy(struct stream *s)
{
    stream_stop(s);
    /* A woken DQBUF may still be re-taking the lock inside pthread_cond_wait. */
    while (s->waiters > 0) {
        pthread_cond_broadcast(&s->cv);
        pthread_cond_wait(&s->cv, &g_lock);
    }
    stream_free_bufs(s);
    if (s->node && s->node->st == s) s->node->st = NULL;
    if (s->owner && s->owner->st == s) {
        s->owner->st = NULL;
        ev_sync(s->owner);
    }
    pthread_cond_destroy(&s->cv);
    free(s->line);
    free(s->jpeg_prefix);
    free(s);
}

static struct stream *stream_new(struct node *n, struct ffd *owner)
{
    struct stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->node = n;
    s->owner = owner;
    s->camera = n->camera;
    for (int i = 0; i < MAX_BUFS; i++) s->bufs[i].memfd = -1;
    n->st = s;
    owner->st = s;
    return s;
}

static int stream_start(struct stream *s)
{
    struct node *n = s->node;
    s->interval_ns = 1000000000ull / k_fps[n->fps_index];
    s->sequence = 0;
    s->dropped = 0;
    s->stop = 0;
    uint32_t w = s->pix.width;
    free(s->line);
    s->line = malloc((size_t)(w + 256) * 2);
    if (!s->line) return ENOMEM;
    if (s->pix.pixelformat == V4L2_PIX_FMT_YUYV) {
        for (uint32_t i = 0; i < w + 256; i++) {
            s->line[2 * i] = (uint8_t)i;
            s->line[2 * i + 1] = 128;
        }
    } else {
        for (uint32_t i = 0; i < w + 256; i++) s->line[i] = (uint8_t)i;
    }
    if (s->pix.pixelformat == V4L2_PIX_FMT_MJPEG) {
        pthread_once(&g_huff_once, huff_init);
        free(s->jpeg_prefix);
        s->jpeg_prefix = malloc(1024);
        if (!s->jpeg_prefix) return ENOMEM;
        s->jpeg_prefix_len = jpeg_prefix(s->jpeg_prefix, s->pix.width, s->pix.height);
    }
    /* The producer must not take signals meant for the application. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, producer, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) return rc;
    s->thread_running = 1;
    s->streaming = 1;
    ev_sync(s->owner);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Mappings                                                            */
/* ------------------------------------------------------------------ */

static void map_add(void *addr, size_t len, uint64_t alloc_id, int index)
{
    pthread_mutex_lock(&g_maplock);
    int n = atomic_load(&g_nmaps);
    if (n < MAX_MAPS) {
        g_maps[n] = (struct mapping){ addr, len, alloc_id, index };
        atomic_store(&g_nmaps, n + 1);
    }
    pthread_mutex_unlock(&g_maplock);
}

static void map_remove(void *addr, size_t len)
{
    if (atomic_load_explicit(&g_nmaps, memory_order_relaxed) == 0) return;
    uintptr_t lo = (uintptr_t)addr, hi = lo + len;
    pthread_mutex_lock(&g_maplock);
    int n = atomic_load(&g_nmaps);
    for (int i = 0; i < n;) {
        uintptr_t a = (uintptr_t)g_maps[i].addr, b = a + g_maps[i].len;
        if (a < hi && lo < b) {
            g_maps[i] = g_maps[--n];
            continue;
        }
        i++;
    }
    atomic_store(&g_nmaps, n);
    pthread_mutex_unlock(&g_maplock);
}

static int map_is_mapped(uint64_t alloc_id, int index)
{
    int found = 0;
    pthread_mutex_lock(&g_maplock);
    int n = atomic_load(&g_nmaps);
    for (int i = 0; i < n && !found; i++)
        if (g_maps[i].alloc_id == alloc_id && g_maps[i].index == index) found = 1;
    pthread_mutex_unlock(&g_maplock);
    return found;
}

/* ------------------------------------------------------------------ */
/* ioctl                                                               */
/* ------------------------------------------------------------------ */

static int ctrl_index(uint32_t id)
{
    for (int i = 0; i < NCTRLS; i++)
        if (k_ctrls[i].id == id) return i;
    return -1;
}

static int ctrl_inactive(const struct node *n, int i)
{
    if (!k_ctrls[i].auto_id) return 0;
    int a = ctrl_index(k_ctrls[i].auto_id);
    return a >= 0 && n->ctrl_val[a] != k_ctrls[i].manual_value;
}

static uint32_t ctrl_flags(const struct node *n, int i)
{
    if (k_ctrls[i].type == V4L2_CTRL_TYPE_CTRL_CLASS) return V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_WRITE_ONLY;
    uint32_t f = 0;
    if (ctrl_inactive(n, i)) f |= V4L2_CTRL_FLAG_INACTIVE;
    /* Changing an auto control changes the flags of its manual partner. */
    for (int j = 0; j < NCTRLS; j++)
        if (k_ctrls[j].auto_id == k_ctrls[i].id) f |= V4L2_CTRL_FLAG_UPDATE;
    return f;
}

/* Finds the control an enumeration step lands on; -1 when none. */
static int ctrl_find_query(uint32_t qid)
{
    if (qid & (V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND)) {
        uint32_t id = qid & V4L2_CTRL_ID_MASK;
        if (!(qid & V4L2_CTRL_FLAG_NEXT_CTRL)) return -1;   /* no compound controls */
        for (int i = 0; i < NCTRLS; i++)
            if (k_ctrls[i].id > id) return i;
        return -1;
    }
    return ctrl_index(qid);
}

static int ctrl_validate(const struct node *n, int i, int64_t *value)
{
    const struct ctrl_info *c = &k_ctrls[i];
    if (c->type == V4L2_CTRL_TYPE_CTRL_CLASS) return EACCES;
    if (ctrl_inactive(n, i)) return EACCES;   /* uvcvideo: camera reports "wrong state" */
    int64_t v = *value;
    if (c->type == V4L2_CTRL_TYPE_MENU) {
        if (v < c->min || v > c->max) return ERANGE;
        if (!menu_name(c->id, (uint32_t)v)) return EINVAL;
    } else {
        if (v < c->min) v = c->min;
        if (v > c->max) v = c->max;
        if (c->step > 1) v = c->min + ((v - c->min + c->step / 2) / c->step) * c->step;
        if (v > c->max) v -= c->step;
    }
    *value = v;
    return 0;
}

static void fill_buffer_info(const struct stream *s, int index, struct v4l2_buffer *vb)
{
    const struct buf *b = &s->bufs[index];
    uint32_t type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    memset(vb, 0, sizeof *vb);
    vb->index = (uint32_t)index;
    vb->type = type;
    vb->memory = s->memory;
    vb->field = V4L2_FIELD_NONE;
    vb->length = (uint32_t)b->length;
    vb->flags = V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | V4L2_BUF_FLAG_TSTAMP_SRC_SOE;
    if (b->state == B_QUEUED || b->state == B_ACTIVE) vb->flags |= V4L2_BUF_FLAG_QUEUED;
    if (b->state == B_DONE) vb->flags |= V4L2_BUF_FLAG_DONE | b->extra_flags;
    if (s->memory == V4L2_MEMORY_MMAP) {
        vb->m.offset = b->offset;
        if (map_is_mapped(s->alloc_id, index)) vb->flags |= V4L2_BUF_FLAG_MAPPED;
    } else {
        vb->m.userptr = b->userptr;
    }
    vb->bytesused = b->bytesused;
    vb->sequence = b->sequence;
    vb->timestamp.tv_sec = (time_t)(b->ts_ns / 1000000000ull);
    vb->timestamp.tv_usec = (suseconds_t)((b->ts_ns % 1000000000ull) / 1000);
}

static int check_userptr(unsigned long ptr, size_t len)
{
    if (!ptr) return EFAULT;
    uintptr_t start = ptr & ~((uintptr_t)g_page - 1);
    size_t span = page_align(ptr + len - start);
    size_t pages = span / (size_t)g_page;
    unsigned char *vec = malloc(pages);
    if (!vec) return ENOMEM;
    int rc = mincore((void *)start, span, vec);
    free(vec);
    return rc == 0 ? 0 : EFAULT;
}

static int do_reqbufs(struct ffd *f, struct v4l2_requestbuffers *rb)
{
    struct node *n = f->node;
    if (rb->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
    if (rb->memory != V4L2_MEMORY_MMAP && rb->memory != V4L2_MEMORY_USERPTR) return EINVAL;
    struct stream *s = n->st;
    if (s && s->owner != f) return EBUSY;
    if (s && (s->streaming || s->joining)) return EBUSY;
    rb->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP | V4L2_BUF_CAP_SUPPORTS_USERPTR |
                       V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS;
    rb->flags = 0;
    memset(rb->reserved, 0, sizeof rb->reserved);
    if (rb->count == 0) {
        if (s) stream_destroy(s);
        return 0;
    }
    if (!s) s = stream_new(n, f);
    if (!s) return ENOMEM;
    stream_free_bufs(s);
    uint32_t count = rb->count > MAX_BUFS ? MAX_BUFS : rb->count;
    s->pix = n->pix;
    s->memory = rb->memory;
    s->alloc_id = ++g_alloc_counter;
    size_t len = s->pix.sizeimage;
    for (uint32_t i = 0; i < count; i++) {
        struct buf *b = &s->bufs[i];
        memset(b, 0, sizeof *b);
        b->memfd = -1;
        if (rb->memory == V4L2_MEMORY_MMAP) {
            char name[48];
            snprintf(name, sizeof name, "devplane-fake-v4l2-buf%u", i);
            b->memfd = memfd_create(name, MFD_CLOEXEC);
            if (b->memfd < 0 || ftruncate(b->memfd, (off_t)page_align(len)) != 0) goto nomem;
            b->kaddr = real_mmap(NULL, page_align(len), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, b->memfd, 0);
            if (b->kaddr == MAP_FAILED) {
                b->kaddr = NULL;
                goto nomem;
            }
            b->offset = (uint32_t)(i * page_align(len));
        }
        /* QUERYBUF reports the needed size for USERPTR too, as vb2 does. */
        b->length = len;
        s->nbufs = (int)i + 1;
    }
    rb->count = count;
    return 0;
nomem:
    stream_destroy(s);
    return ENOMEM;
}

static int do_qbuf(struct ffd *f, struct v4l2_buffer *vb)
{
    struct stream *s = f->st;
    if (vb->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
    if (!s) return f->node->st ? EBUSY : EINVAL;
    if (s->joining) return EBUSY;
    if (vb->memory != s->memory || vb->index >= (uint32_t)s->nbufs) return EINVAL;
    struct buf *b = &s->bufs[vb->index];
    if (b->state != B_DEQUEUED) return EINVAL;
    if (s->memory == V4L2_MEMORY_USERPTR) {
        if (vb->length < s->pix.sizeimage) return EINVAL;
        int rc = check_userptr(vb->m.userptr, vb->length);
        if (rc) return rc;
        b->userptr = vb->m.userptr;
        b->kaddr = (uint8_t *)vb->m.userptr;
        b->length = vb->length;
    }
    b->state = B_QUEUED;
    fifo_push(&s->queued, (int)vb->index);
    pthread_cond_broadcast(&s->cv);
    fill_buffer_info(s, (int)vb->index, vb);
    return 0;
}

static int do_dqbuf(struct ffd *f, struct v4l2_buffer *vb)
{
    if (vb->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
    for (;;) {
        struct stream *s = f->st;
        if (f->closing) return EBADF;
        if (fd_dead(f)) return ENODEV;
        if (!s) return f->node->st ? EBUSY : EINVAL;
        if (vb->memory != s->memory) return EINVAL;
        if (!s->streaming) return EINVAL;
        if (s->done.count > 0) {
            int idx = fifo_pop(&s->done);
            struct buf *b = &s->bufs[idx];
            ev_sync(f);
            if (b->eio) {
                /* The driver recycles the buffer; userspace only sees the error. */
                b->eio = 0;
                b->state = B_QUEUED;
                fifo_push(&s->queued, idx);
                pthread_cond_broadcast(&s->cv);
                return EIO;
            }
            b->state = B_DEQUEUED;
            fill_buffer_info(s, idx, vb);
            vb->flags |= b->extra_flags;
            return 0;
        }
        int fl = fcntl(f->fd, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK)) return EAGAIN;
        f->inflight++;
        s->waiters++;
        pthread_cond_wait(&s->cv, &g_lock);
        s->waiters--;
        f->inflight--;
        /* close() or REQBUFS(0) may be waiting for us to leave the cv. */
        if (f->closing || s->waiters == 0) pthread_cond_broadcast(&s->cv);
    }
}

static void copy_str(uint8_t *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memset(dst, 0, cap);
    memcpy(dst, src, n);
}

static int ioctl_meta(struct ffd *f, unsigned long req, void *arg)
{
    (void)f;
    switch (req) {
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *d = arg;
        if (d->type != V4L2_BUF_TYPE_META_CAPTURE || d->index != 0) return EINVAL;
        uint32_t idx = d->index, type = d->type;
        memset(d, 0, sizeof *d);
        d->index = idx;
        d->type = type;
        d->pixelformat = V4L2_META_FMT_UVC;
        copy_str(d->description, sizeof d->description, "UVC Payload Header Metadata");
        return 0;
    }
    case VIDIOC_G_FMT:
    case VIDIOC_S_FMT:
    case VIDIOC_TRY_FMT: {
        struct v4l2_format *fm = arg;
        if (fm->type != V4L2_BUF_TYPE_META_CAPTURE) return EINVAL;
        memset(&fm->fmt, 0, sizeof fm->fmt);
        fm->fmt.meta.dataformat = V4L2_META_FMT_UVC;
        fm->fmt.meta.buffersize = META_BUFSIZE;
        return 0;
    }
    case VIDIOC_REQBUFS:
    case VIDIOC_QUERYBUF:
    case VIDIOC_QBUF:
    case VIDIOC_DQBUF:
    case VIDIOC_STREAMON:
    case VIDIOC_STREAMOFF:
        /* Metadata streaming is not emulated; video buffer types are wrong here anyway. */
        return EINVAL;
    }
    return ENOTTY;
}

static int ioctl_capture(struct ffd *f, unsigned long req, void *arg)
{
    struct node *n = f->node;
    switch (req) {
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *d = arg;
        if (d->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        const struct fmt_info *fi = fmt_by_index(d->index);
        if (!fi) return EINVAL;
        uint32_t idx = d->index;
        memset(d, 0, sizeof *d);
        d->index = idx;
        d->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        d->flags = fi->flags;
        d->pixelformat = fi->fourcc;
        copy_str(d->description, sizeof d->description, fi->desc);
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *e = arg;
        if (!fmt_find(e->pixel_format) || e->index >= (uint32_t)NSIZES) return EINVAL;
        uint32_t idx = e->index, pf = e->pixel_format;
        memset(e, 0, sizeof *e);
        e->index = idx;
        e->pixel_format = pf;
        e->type = V4L2_FRMSIZE_TYPE_DISCRETE;
        e->discrete.width = k_sizes[idx].w;
        e->discrete.height = k_sizes[idx].h;
        return 0;
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *e = arg;
        if (!fmt_find(e->pixel_format) || e->index >= (uint32_t)NFPS) return EINVAL;
        int ok = 0;
        for (int i = 0; i < NSIZES; i++)
            if (k_sizes[i].w == e->width && k_sizes[i].h == e->height) ok = 1;
        if (!ok) return EINVAL;
        uint32_t idx = e->index, pf = e->pixel_format, w = e->width, h = e->height;
        memset(e, 0, sizeof *e);
        e->index = idx;
        e->pixel_format = pf;
        e->width = w;
        e->height = h;
        e->type = V4L2_FRMIVAL_TYPE_DISCRETE;
        e->discrete.numerator = 1;
        e->discrete.denominator = k_fps[idx];
        return 0;
    }
    case VIDIOC_G_FMT: {
        struct v4l2_format *fm = arg;
        if (fm->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        memset(&fm->fmt, 0, sizeof fm->fmt);
        fm->fmt.pix = n->pix;
        return 0;
    }
    case VIDIOC_TRY_FMT:
    case VIDIOC_S_FMT: {
        struct v4l2_format *fm = arg;
        if (fm->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        if (req == VIDIOC_S_FMT && n->st && (n->st->nbufs > 0 || n->st->streaming)) return EBUSY;
        struct v4l2_pix_format pix = fm->fmt.pix;
        try_pix(&pix);
        memset(&fm->fmt, 0, sizeof fm->fmt);
        fm->fmt.pix = pix;
        if (req == VIDIOC_S_FMT) n->pix = pix;
        return 0;
    }
    case VIDIOC_G_PARM:
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *p = arg;
        if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        if (req == VIDIOC_S_PARM) {
            if (n->st && n->st->streaming) return EBUSY;
            struct v4l2_fract tpf = p->parm.capture.timeperframe;
            /* Nearest supported interval, compared in 100 ns units as uvcvideo does. */
            uint64_t want = tpf.denominator ? (uint64_t)tpf.numerator * 10000000ull / tpf.denominator : 0;
            uint64_t best = UINT64_MAX;
            for (int i = 0; i < NFPS; i++) {
                uint64_t iv = 10000000ull / k_fps[i];
                uint64_t d = iv > want ? iv - want : want - iv;
                if (d < best) { best = d; n->fps_index = i; }
            }
        }
        memset(&p->parm, 0, sizeof p->parm);
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        p->parm.capture.timeperframe.numerator = 1;
        p->parm.capture.timeperframe.denominator = k_fps[n->fps_index];
        return 0;
    }
    case VIDIOC_ENUMINPUT: {
        struct v4l2_input *in = arg;
        if (in->index != 0) return EINVAL;
        memset(in, 0, sizeof *in);
        copy_str(in->name, sizeof in->name, "Camera 1");
        in->type = V4L2_INPUT_TYPE_CAMERA;
        return 0;
    }
    case VIDIOC_G_INPUT:
        *(int *)arg = 0;
        return 0;
    case VIDIOC_S_INPUT:
        return *(int *)arg == 0 ? 0 : EINVAL;
    case VIDIOC_QUERYCTRL: {
        struct v4l2_queryctrl *q = arg;
        int i = ctrl_find_query(q->id);
        if (i < 0) return EINVAL;
        const struct ctrl_info *c = &k_ctrls[i];
        memset(q, 0, sizeof *q);
        q->id = c->id;
        q->type = c->type;
        copy_str(q->name, sizeof q->name, c->name);
        q->minimum = c->min;
        q->maximum = c->max;
        q->step = c->step;
        q->default_value = c->def;
        q->flags = ctrl_flags(n, i);
        return 0;
    }
    case VIDIOC_QUERY_EXT_CTRL: {
        struct v4l2_query_ext_ctrl *q = arg;
        int i = ctrl_find_query(q->id);
        if (i < 0) return EINVAL;
        const struct ctrl_info *c = &k_ctrls[i];
        memset(q, 0, sizeof *q);
        q->id = c->id;
        q->type = c->type;
        copy_str((uint8_t *)q->name, sizeof q->name, c->name);
        q->minimum = c->min;
        q->maximum = c->max;
        q->step = (uint64_t)c->step;
        q->default_value = c->def;
        q->flags = ctrl_flags(n, i);
        if (c->type != V4L2_CTRL_TYPE_CTRL_CLASS) {
            q->elem_size = 4;
            q->elems = 1;
        }
        return 0;
    }
    case VIDIOC_QUERYMENU: {
        struct v4l2_querymenu *m = arg;
        int i = ctrl_index(m->id);
        if (i < 0 || k_ctrls[i].type != V4L2_CTRL_TYPE_MENU) return EINVAL;
        const char *name = menu_name(m->id, m->index);
        if (!name) return EINVAL;
        copy_str(m->name, sizeof m->name, name);
        m->reserved = 0;
        return 0;
    }
    case VIDIOC_G_CTRL: {
        struct v4l2_control *c = arg;
        int i = ctrl_index(c->id);
        if (i < 0) return EINVAL;
        if (k_ctrls[i].type == V4L2_CTRL_TYPE_CTRL_CLASS) return EACCES;
        c->value = n->ctrl_val[i];
        return 0;
    }
    case VIDIOC_S_CTRL: {
        struct v4l2_control *c = arg;
        int i = ctrl_index(c->id);
        if (i < 0) return EINVAL;
        int64_t v = c->value;
        int rc = ctrl_validate(n, i, &v);
        if (rc) return rc;
        n->ctrl_val[i] = (int32_t)v;
        c->value = (int32_t)v;
        return 0;
    }
    case VIDIOC_G_EXT_CTRLS:
    case VIDIOC_S_EXT_CTRLS:
    case VIDIOC_TRY_EXT_CTRLS: {
        struct v4l2_ext_controls *e = arg;
        uint32_t which = e->which;
        int def = which == V4L2_CTRL_WHICH_DEF_VAL;
        if (which == V4L2_CTRL_WHICH_REQUEST_VAL) return EINVAL;
        if (def && req != VIDIOC_G_EXT_CTRLS) return EINVAL;
        if (e->count && !e->controls) return EFAULT;
        for (uint32_t k = 0; k < e->count; k++) {
            struct v4l2_ext_control *c = &e->controls[k];
            int i = ctrl_index(c->id);
            if (i < 0 || (which && !def && V4L2_CTRL_ID2WHICH(c->id) != which)) {
                e->error_idx = req == VIDIOC_TRY_EXT_CTRLS ? k : e->count;
                return EINVAL;
            }
            if (k_ctrls[i].type == V4L2_CTRL_TYPE_CTRL_CLASS) {
                /* Class controls are flagged read-only and write-only. */
                e->error_idx = req == VIDIOC_TRY_EXT_CTRLS ? k : e->count;
                return EACCES;
            }
            if (req != VIDIOC_G_EXT_CTRLS) {
                int64_t v = c->value;
                int rc = ctrl_validate(n, i, &v);
                if (rc) {
                    e->error_idx = req == VIDIOC_TRY_EXT_CTRLS ? k : e->count;
                    return rc;
                }
            }
        }
        for (uint32_t k = 0; k < e->count; k++) {
            struct v4l2_ext_control *c = &e->controls[k];
            int i = ctrl_index(c->id);
            if (req == VIDIOC_G_EXT_CTRLS) {
                c->value = def ? k_ctrls[i].def : n->ctrl_val[i];
            } else {
                int64_t v = c->value;
                ctrl_validate(n, i, &v);
                c->value = (int32_t)v;
                if (req == VIDIOC_S_EXT_CTRLS) n->ctrl_val[i] = (int32_t)v;
            }
        }
        return 0;
    }
    case VIDIOC_REQBUFS:
        return do_reqbufs(f, arg);
    case VIDIOC_QUERYBUF: {
        struct v4l2_buffer *vb = arg;
        struct stream *s = n->st;
        if (vb->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        if (!s || vb->index >= (uint32_t)s->nbufs) return EINVAL;
        fill_buffer_info(s, (int)vb->index, vb);
        return 0;
    }
    case VIDIOC_QBUF:
        return do_qbuf(f, arg);
    case VIDIOC_DQBUF:
        return do_dqbuf(f, arg);
    case VIDIOC_STREAMON:
    case VIDIOC_STREAMOFF: {
        int type = *(int *)arg;
        if (type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        struct stream *s = f->st;
        if (!s && n->st) return EBUSY;
        if (!s) return req == VIDIOC_STREAMOFF ? 0 : EINVAL;   /* vb2: STREAMOFF of an idle queue is fine */
        if (s->joining) return EBUSY;
        if (req == VIDIOC_STREAMOFF) {
            stream_stop(s);
            return 0;
        }
        if (s->streaming) return 0;
        if (s->nbufs == 0) return EINVAL;
        ctl_refresh(1);
        return stream_start(s);
    }
    case VIDIOC_SUBSCRIBE_EVENT: {
        struct v4l2_event_subscription *sub = arg;
        if (sub->type != V4L2_EVENT_CTRL) return EINVAL;
        return ctrl_index(sub->id) >= 0 ? 0 : EINVAL;
    }
    case VIDIOC_UNSUBSCRIBE_EVENT:
        return 0;
    case VIDIOC_DQEVENT:
        return ENOENT;
    }
    return ENOTTY;
}

/* The ioctls this driver implements; anything else is ENOTTY even with a NULL argument. */
static int known_ioctl(unsigned long req)
{
    switch (req) {
    case VIDIOC_QUERYCAP: case VIDIOC_G_PRIORITY: case VIDIOC_S_PRIORITY:
    case VIDIOC_ENUM_FMT: case VIDIOC_G_FMT: case VIDIOC_S_FMT: case VIDIOC_TRY_FMT:
    case VIDIOC_ENUM_FRAMESIZES: case VIDIOC_ENUM_FRAMEINTERVALS: case VIDIOC_G_PARM: case VIDIOC_S_PARM:
    case VIDIOC_ENUMINPUT: case VIDIOC_G_INPUT: case VIDIOC_S_INPUT:
    case VIDIOC_QUERYCTRL: case VIDIOC_QUERY_EXT_CTRL: case VIDIOC_QUERYMENU:
    case VIDIOC_G_CTRL: case VIDIOC_S_CTRL:
    case VIDIOC_G_EXT_CTRLS: case VIDIOC_S_EXT_CTRLS: case VIDIOC_TRY_EXT_CTRLS:
    case VIDIOC_REQBUFS: case VIDIOC_QUERYBUF: case VIDIOC_QBUF: case VIDIOC_DQBUF:
    case VIDIOC_STREAMON: case VIDIOC_STREAMOFF:
    case VIDIOC_SUBSCRIBE_EVENT: case VIDIOC_UNSUBSCRIBE_EVENT: case VIDIOC_DQEVENT:
        return 1;
    }
    return 0;
}

/* The ioctls the V4L2 core refuses with EBUSY while another fd holds a higher priority. */
static int needs_prio(unsigned long req)
{
    switch (req) {
    case VIDIOC_S_PRIORITY: case VIDIOC_S_FMT: case VIDIOC_S_PARM: case VIDIOC_S_INPUT:
    case VIDIOC_S_CTRL: case VIDIOC_S_EXT_CTRLS: case VIDIOC_REQBUFS:
    case VIDIOC_STREAMON: case VIDIOC_STREAMOFF:
        return 1;
    }
    return 0;
}

static uint32_t prio_max(const struct node *n)
{
    for (uint32_t p = V4L2_PRIORITY_RECORD; p > V4L2_PRIORITY_UNSET; p--)
        if (n->prios[p] > 0) return p;
    return V4L2_PRIORITY_UNSET;
}

/* Takes the fd, not the ffd: the lookup is repeated under the lock so a
 * concurrent close() cannot free the state under us. */
static int fake_ioctl(int fd, unsigned long req, void *arg)
{
    pthread_mutex_lock(&g_lock);
    int rc;
    ctl_refresh(0);
    struct ffd *f = fd_lookup(fd);
    if (!f || f->closing) rc = EBADF;
    else if (fd_dead(f)) rc = ENODEV;
    else if (!known_ioctl(req)) rc = ENOTTY;
    else if (!arg) rc = EFAULT;
    else if (needs_prio(req) && f->prio < prio_max(f->node)) rc = EBUSY;
    else if (req == VIDIOC_QUERYCAP) {
        struct v4l2_capability *cap = arg;
        struct node *n = f->node;
        int has_meta = 0;
        for (int i = 0; i < MAX_NODES; i++)
            if (g_nodes[i].used && g_nodes[i].configured && g_nodes[i].camera == n->camera &&
                g_nodes[i].kind == KIND_META)
                has_meta = 1;
        memset(cap, 0, sizeof *cap);
        copy_str(cap->driver, sizeof cap->driver, "uvcvideo");
        copy_str(cap->card, sizeof cap->card, "devplane fake camera");
        char bus[32];
        snprintf(bus, sizeof bus, "usb-0000:00:14.0-%d", n->camera + 1);
        copy_str(cap->bus_info, sizeof cap->bus_info, bus);
        cap->version = g_kernel_version;
        /* As uvcvideo: capabilities describe the whole camera, device_caps this node. */
        cap->capabilities = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING | V4L2_CAP_DEVICE_CAPS |
                            V4L2_CAP_EXT_PIX_FORMAT | (has_meta ? V4L2_CAP_META_CAPTURE : 0);
        cap->device_caps = (n->kind == KIND_META ? V4L2_CAP_META_CAPTURE : V4L2_CAP_VIDEO_CAPTURE) |
                           V4L2_CAP_STREAMING | V4L2_CAP_EXT_PIX_FORMAT;
        rc = 0;
    } else if (req == VIDIOC_G_PRIORITY) {
        *(uint32_t *)arg = prio_max(f->node);
        rc = 0;
    } else if (req == VIDIOC_S_PRIORITY) {
        uint32_t p = *(uint32_t *)arg;
        if (p == V4L2_PRIORITY_UNSET) p = V4L2_PRIORITY_DEFAULT;
        if (p > V4L2_PRIORITY_RECORD) rc = EINVAL;
        else {
            f->node->prios[f->prio]--;
            f->node->prios[p]++;
            f->prio = p;
            rc = 0;
        }
    } else if (f->node->kind == KIND_META) {
        rc = ioctl_meta(f, req, arg);
    } else {
        rc = ioctl_capture(f, req, arg);
    }
    pthread_mutex_unlock(&g_lock);
    if (rc) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* open / close                                                        */
/* ------------------------------------------------------------------ */

/* Which node a path names, present or not; NULL if the path is not ours. Lock held. */
static struct node *node_for_path(const char *path)
{
    if (!path) return NULL;
    config_refresh();
    for (int i = 0; i < MAX_NODES; i++) {
        struct node *n = &g_nodes[i];
        if (!n->used || !n->configured) continue;
        if (!strcmp(n->orig_path, path) || (n->alt_path[0] && !strcmp(n->alt_path, path))) return n;
    }
    return NULL;
}

static int node_here(struct node *n, const char *path)
{
    node_check_reappear(n);
    return n->present && !strcmp(n->cur_path, path);
}

/* Tools such as v4l2-ctl classify a node by /sys/dev/char/MAJ:MIN/uevent;
 * for a present fake node that file is served from a memfd. Returns -2 if
 * path is not such a file. Lock held. */
static int sysfs_open(const char *path)
{
    static const char prefix[] = "/sys/dev/char/";
    unsigned maj, min;
    int used = 0;
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) return -2;
    if (sscanf(path + sizeof prefix - 1, "%u:%u/uevent%n", &maj, &min, &used) != 2 || used == 0 ||
        path[sizeof prefix - 1 + (size_t)used] != 0 || maj != VIDEO_MAJOR)
        return -2;
    config_refresh();
    for (int i = 0; i < MAX_NODES; i++) {
        struct node *n = &g_nodes[i];
        if (!n->used || !n->configured || (unsigned)n->minor != min) continue;
        node_check_reappear(n);
        if (!n->present) return -2;
        char text[128];
        int len = snprintf(text, sizeof text, "MAJOR=%u\nMINOR=%u\nDEVNAME=video%u\n", maj, min, min);
        int fd = memfd_create("devplane-fake-sysfs", MFD_CLOEXEC);
        if (fd < 0) return -1;
        if (write(fd, text, (size_t)len) != len || lseek(fd, 0, SEEK_SET) != 0) {
            int e = errno;
            real_close(fd);
            errno = e;
            return -1;
        }
        return fd;
    }
    return -2;
}

/* Returns -2 if the path is not a fake device, else an fd or -1 with errno. */
static int try_fake_open(const char *path, int flags)
{
    init();
    if (!path) return -2;
    pthread_mutex_lock(&g_lock);
    struct node *n = node_for_path(path);
    if (!n) {
        int fd = sysfs_open(path);
        pthread_mutex_unlock(&g_lock);
        return fd;
    }
    int err = 0, fd = -1;
    ctl_refresh(1);
    if (!node_here(n, path)) err = ENOENT;
    else if ((flags & O_CREAT) && (flags & O_EXCL)) err = EEXIST;
    else if (flags & O_DIRECTORY) err = ENOTDIR;
    else if (g_ctl.eacces) err = EACCES;
    else if (g_ctl.busy) err = EBUSY;
    if (!err) {
        fd = eventfd(0, ((flags & O_CLOEXEC) ? EFD_CLOEXEC : 0) | ((flags & O_NONBLOCK) ? EFD_NONBLOCK : 0));
        if (fd < 0) err = errno;
        else if (fd >= FD_LIMIT) {
            real_close(fd);
            fd = -1;
            err = EMFILE;
        }
    }
    if (!err) {
        struct ffd *f = calloc(1, sizeof *f);
        if (!f) {
            real_close(fd);
            fd = -1;
            err = ENOMEM;
        } else {
            f->fd = fd;
            f->node = n;
            f->gen = n->gen;
            f->prio = V4L2_PRIORITY_DEFAULT;
            n->prios[f->prio]++;
            f->next = g_fds;
            g_fds = f;
            n->refs++;
            ev_sync(f);
            atomic_store_explicit(&g_fdtab[fd], f, memory_order_release);
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (err) {
        errno = err;
        return -1;
    }
    return fd;
}

/* Drops the fake state of fd; closes the eventfd too when asked. Returns 1 if fd was fake. */
static int fake_forget(int fd, int do_close)
{
    if (!fd_lookup(fd)) return 0;
    pthread_mutex_lock(&g_lock);
    struct ffd *f = fd_lookup(fd);
    if (!f) {
        pthread_mutex_unlock(&g_lock);
        return 0;
    }
    atomic_store_explicit(&g_fdtab[fd], NULL, memory_order_release);
    f->closing = 1;
    while (f->inflight && f->st) {
        pthread_cond_broadcast(&f->st->cv);
        pthread_cond_wait(&f->st->cv, &g_lock);
    }
    if (f->st) stream_destroy(f->st);
    for (struct ffd **pp = &g_fds; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->node->refs--;
    f->node->prios[f->prio]--;
    if (do_close) real_close(fd);
    pthread_mutex_unlock(&g_lock);
    free(f);
    return 1;
}

static int open_common(const char *path, int flags, mode_t mode, int (*fn)(const char *, int, ...))
{
    int fd = try_fake_open(path, flags);
    if (fd != -2) return fd;
    if (!fn) {
        errno = ENOSYS;
        return -1;
    }
    return fn(path, flags, mode);
}

/* Same rule as glibc: a mode argument exists only with O_CREAT or O_TMPFILE. */
static mode_t va_mode(int flags, va_list ap)
{
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) return (mode_t)va_arg(ap, int);
    return 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    init();
    return open_common(path, flags, mode, real_open);
}

EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    init();
    return open_common(path, flags, mode, real_open64 ? real_open64 : real_open);
}

static int is_abs_or_cwd(int dirfd, const char *path) { return path && (path[0] == '/' || dirfd == AT_FDCWD); }
static int empty_path(const char *path) { return path && !path[0]; }

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    init();
    if (is_abs_or_cwd(dirfd, path)) {
        int fd = try_fake_open(path, flags);
        if (fd != -2) return fd;
    }
    return real_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    init();
    if (is_abs_or_cwd(dirfd, path)) {
        int fd = try_fake_open(path, flags);
        if (fd != -2) return fd;
    }
    return (real_openat64 ? real_openat64 : real_openat)(dirfd, path, flags, mode);
}

/* _FORTIFY_SOURCE builds call these when the flags are not a constant. */
EXPORT int __open_2(const char *path, int flags)
{
    init();
    int fd = try_fake_open(path, flags);
    if (fd != -2) return fd;
    return real___open_2 ? real___open_2(path, flags) : real_open(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
    init();
    int fd = try_fake_open(path, flags);
    if (fd != -2) return fd;
    return real___open64_2 ? real___open64_2(path, flags) : real_open(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    init();
    if (is_abs_or_cwd(dirfd, path)) {
        int fd = try_fake_open(path, flags);
        if (fd != -2) return fd;
    }
    return real___openat_2 ? real___openat_2(dirfd, path, flags) : real_openat(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    init();
    if (is_abs_or_cwd(dirfd, path)) {
        int fd = try_fake_open(path, flags);
        if (fd != -2) return fd;
    }
    return real___openat64_2 ? real___openat64_2(dirfd, path, flags) : real_openat(dirfd, path, flags);
}

static FILE *fopen_common(const char *path, const char *mode, FILE *(*fn)(const char *, const char *))
{
    init();
    if (path && !strncmp(path, "/sys/dev/char/", 14)) {
        pthread_mutex_lock(&g_lock);
        int fd = sysfs_open(path);
        pthread_mutex_unlock(&g_lock);
        if (fd == -1) return NULL;
        if (fd >= 0) {
            FILE *f = fdopen(fd, "r");
            if (!f) real_close(fd);
            return f;
        }
    }
    return fn(path, mode);
}

/* std::ifstream and fopen() reach open() inside libc, out of reach of the open() hook. */
EXPORT FILE *fopen(const char *path, const char *mode)
{
    init();
    return fopen_common(path, mode, real_fopen);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
    init();
    return fopen_common(path, mode, real_fopen64 ? real_fopen64 : real_fopen);
}

EXPORT int close(int fd)
{
    init();
    if (fake_forget(fd, 1)) return 0;
    return real_close(fd);
}

/* dup2/dup3 onto a fake fd silently close it: forget its state first. */
static void forget_dup_target(int oldfd, int newfd)
{
    if (oldfd != newfd && fd_lookup(newfd) && fcntl(oldfd, F_GETFD) != -1) fake_forget(newfd, 0);
}

EXPORT int dup2(int oldfd, int newfd)
{
    init();
    forget_dup_target(oldfd, newfd);
    return real_dup2(oldfd, newfd);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    init();
    forget_dup_target(oldfd, newfd);
    return real_dup3(oldfd, newfd, flags);
}

EXPORT ssize_t read(int fd, void *buf, size_t count)
{
    init();
    if (fd_lookup(fd)) {
        /* uvcvideo has no read() I/O. */
        errno = EINVAL;
        return -1;
    }
    return real_read(fd, buf, count);
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    init();
    if (fd_lookup(fd) && _IOC_TYPE(req) == 'V') return fake_ioctl(fd, req, arg);
    /* FIONBIO, FIOCLEX... act on the eventfd itself. */
    return real_ioctl(fd, req, arg);
}

/* ------------------------------------------------------------------ */
/* mmap                                                                */
/* ------------------------------------------------------------------ */

static void *fake_mmap(int fd, void *addr, size_t len, int prot, int flags, long long off)
{
    pthread_mutex_lock(&g_lock);
    int err = 0;
    void *res = MAP_FAILED;
    struct ffd *f = fd_lookup(fd);
    struct stream *s = f ? f->node->st : NULL;
    if (!f) err = EBADF;
    else if (fd_dead(f)) err = ENODEV;
    else if (!(flags & MAP_SHARED)) err = EINVAL;
    else if (!s || s->memory != V4L2_MEMORY_MMAP) err = EINVAL;
    else {
        int idx = -1;
        for (int i = 0; i < s->nbufs; i++)
            if ((long long)s->bufs[i].offset == off) idx = i;
        if (idx < 0 || len == 0 || len > page_align(s->bufs[idx].length)) err = EINVAL;
        else {
            res = real_mmap(addr, len, prot, flags, s->bufs[idx].memfd, 0);
            if (res == MAP_FAILED) err = errno;
            else map_add(res, len, s->alloc_id, idx);
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (err) errno = err;
    return res;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    init();
    if (fd_lookup(fd)) return fake_mmap(fd, addr, len, prot, flags, (long long)off);
    return real_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    init();
    if (fd_lookup(fd)) return fake_mmap(fd, addr, len, prot, flags, (long long)off);
    if (real_mmap64) return real_mmap64(addr, len, prot, flags, fd, off);
    return real_mmap(addr, len, prot, flags, fd, (off_t)off);
}

EXPORT int munmap(void *addr, size_t len)
{
    init();
    map_remove(addr, len);
    return real_munmap(addr, len);
}

/* ------------------------------------------------------------------ */
/* stat family                                                         */
/* ------------------------------------------------------------------ */

#define FILL_STAT(st, n)                                           \
    do {                                                           \
        memset((st), 0, sizeof *(st));                             \
        (st)->st_dev = makedev(0, 6);                              \
        (st)->st_ino = 0x44500000u + (unsigned)(n)->minor;         \
        (st)->st_mode = S_IFCHR | 0660;                            \
        (st)->st_nlink = 1;                                        \
        (st)->st_uid = 0;                                          \
        (st)->st_gid = VIDEO_GID;                                  \
        (st)->st_rdev = makedev(VIDEO_MAJOR, (unsigned)(n)->minor); \
        (st)->st_blksize = 4096;                                   \
        (st)->st_atim = (n)->born;                                 \
        (st)->st_mtim = (n)->born;                                 \
        (st)->st_ctim = (n)->born;                                 \
    } while (0)

static void fill_statx(struct statx *sx, const struct node *n)
{
    memset(sx, 0, sizeof *sx);
    sx->stx_mask = STATX_BASIC_STATS;
    sx->stx_blksize = 4096;
    sx->stx_nlink = 1;
    sx->stx_uid = 0;
    sx->stx_gid = VIDEO_GID;
    sx->stx_mode = S_IFCHR | 0660;
    sx->stx_ino = 0x44500000u + (unsigned)n->minor;
    sx->stx_atime.tv_sec = sx->stx_mtime.tv_sec = sx->stx_ctime.tv_sec = n->born.tv_sec;
    sx->stx_atime.tv_nsec = sx->stx_mtime.tv_nsec = sx->stx_ctime.tv_nsec = (uint32_t)n->born.tv_nsec;
    sx->stx_rdev_major = VIDEO_MAJOR;
    sx->stx_rdev_minor = (unsigned)n->minor;
    sx->stx_dev_major = 0;
    sx->stx_dev_minor = 6;
}

/* 1: path is a present fake node (*out set), 0: not ours, -1: ours but absent (ENOENT). */
static int path_state(const char *path, struct node **out)
{
    if (!path) return 0;
    init();
    pthread_mutex_lock(&g_lock);
    struct node *n = node_for_path(path);
    int r = 0;
    if (n) {
        ctl_refresh(0);
        r = node_here(n, path) ? 1 : -1;
    }
    pthread_mutex_unlock(&g_lock);
    *out = n;
    return r;
}

/* Stat-like hooks share one shape: fake path/fd answers, anything else goes to libc. */
#define STAT_PATH_HOOK(ret_fill)                       \
    struct node *n;                                    \
    int ps = path_state(path, &n);                     \
    if (ps < 0) { errno = ENOENT; return -1; }         \
    if (ps > 0) { ret_fill; return 0; }

static struct node *fd_node(int fd)
{
    if (!fd_lookup(fd)) return NULL;
    pthread_mutex_lock(&g_lock);
    struct ffd *f = fd_lookup(fd);
    struct node *n = f ? f->node : NULL;
    pthread_mutex_unlock(&g_lock);
    return n;
}

EXPORT int stat(const char *path, struct stat *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real_stat ? real_stat(path, st) : real___xstat(_STAT_VER, path, st);
}

EXPORT int lstat(const char *path, struct stat *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real_lstat ? real_lstat(path, st) : real___lxstat(_STAT_VER, path, st);
}

EXPORT int stat64(const char *path, struct stat64 *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real_stat64 ? real_stat64(path, st) : real___xstat64(_STAT_VER, path, st);
}

EXPORT int lstat64(const char *path, struct stat64 *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real_lstat64 ? real_lstat64(path, st) : real___lxstat64(_STAT_VER, path, st);
}

EXPORT int fstat(int fd, struct stat *st)
{
    init();
    struct node *n = fd_node(fd);
    if (n) { FILL_STAT(st, n); return 0; }
    return real_fstat ? real_fstat(fd, st) : real___fxstat(_STAT_VER, fd, st);
}

EXPORT int fstat64(int fd, struct stat64 *st)
{
    init();
    struct node *n = fd_node(fd);
    if (n) { FILL_STAT(st, n); return 0; }
    return real_fstat64 ? real_fstat64(fd, st) : real___fxstat64(_STAT_VER, fd, st);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    init();
    if ((flags & AT_EMPTY_PATH) && empty_path(path)) {
        struct node *n = fd_node(dirfd);
        if (n) { FILL_STAT(st, n); return 0; }
    } else if (is_abs_or_cwd(dirfd, path)) {
        STAT_PATH_HOOK(FILL_STAT(st, n))
    }
    return real_fstatat ? real_fstatat(dirfd, path, st, flags) : real___fxstatat(_STAT_VER, dirfd, path, st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    init();
    if ((flags & AT_EMPTY_PATH) && empty_path(path)) {
        struct node *n = fd_node(dirfd);
        if (n) { FILL_STAT(st, n); return 0; }
    } else if (is_abs_or_cwd(dirfd, path)) {
        STAT_PATH_HOOK(FILL_STAT(st, n))
    }
    return real_fstatat64 ? real_fstatat64(dirfd, path, st, flags)
                          : real___fxstatat64(_STAT_VER, dirfd, path, st, flags);
}

/* Pre-2.33 glibc entry points, still used by binaries built against it. */
EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real___xstat ? real___xstat(ver, path, st) : real_stat(path, st);
}

EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real___xstat64 ? real___xstat64(ver, path, st) : real_stat64(path, st);
}

EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real___lxstat ? real___lxstat(ver, path, st) : real_lstat(path, st);
}

EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
    STAT_PATH_HOOK(FILL_STAT(st, n))
    return real___lxstat64 ? real___lxstat64(ver, path, st) : real_lstat64(path, st);
}

EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
    init();
    struct node *n = fd_node(fd);
    if (n) { FILL_STAT(st, n); return 0; }
    return real___fxstat ? real___fxstat(ver, fd, st) : real_fstat(fd, st);
}

EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
    init();
    struct node *n = fd_node(fd);
    if (n) { FILL_STAT(st, n); return 0; }
    return real___fxstat64 ? real___fxstat64(ver, fd, st) : real_fstat64(fd, st);
}

EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
    init();
    if (is_abs_or_cwd(dirfd, path)) {
        STAT_PATH_HOOK(FILL_STAT(st, n))
    }
    return real___fxstatat ? real___fxstatat(ver, dirfd, path, st, flags) : real_fstatat(dirfd, path, st, flags);
}

EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
    init();
    if (is_abs_or_cwd(dirfd, path)) {
        STAT_PATH_HOOK(FILL_STAT(st, n))
    }
    return real___fxstatat64 ? real___fxstatat64(ver, dirfd, path, st, flags)
                             : real_fstatat64(dirfd, path, st, flags);
}

static int statx_common(int dirfd, const char *path, int flags, struct statx *sx, int *handled)
{
    *handled = 1;
    if ((flags & AT_EMPTY_PATH) && path && !path[0]) {
        struct node *n = fd_node(dirfd);
        if (n) { fill_statx(sx, n); return 0; }
    } else if (is_abs_or_cwd(dirfd, path)) {
        STAT_PATH_HOOK(fill_statx(sx, n))
    }
    *handled = 0;
    return 0;
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *sx)
{
    init();
    int handled, rc = statx_common(dirfd, path, flags, sx, &handled);
    if (handled) return rc;
    if (real_statx) return real_statx(dirfd, path, flags, mask, sx);
    return (int)real_syscall(SYS_statx, (long)dirfd, (long)path, (long)flags, (long)mask, (long)sx);
}

static int access_common(const char *path, int mode, int *handled)
{
    struct node *n;
    int ps = path_state(path, &n);
    *handled = ps != 0;
    if (ps < 0) { errno = ENOENT; return -1; }
    if (ps > 0 && (mode & (R_OK | W_OK)) && g_ctl.eacces) { errno = EACCES; return -1; }
    if (ps > 0 && (mode & X_OK)) { errno = EACCES; return -1; }
    return 0;
}

EXPORT int access(const char *path, int mode)
{
    int handled, rc = access_common(path, mode, &handled);
    if (handled) return rc;
    return real_access(path, mode);
}

EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
    init();
    if (is_abs_or_cwd(dirfd, path)) {
        int handled, rc = access_common(path, mode, &handled);
        if (handled) return rc;
    }
    return real_faccessat(dirfd, path, mode, flags);
}

EXPORT int euidaccess(const char *path, int mode)
{
    int handled, rc = access_common(path, mode, &handled);
    if (handled) return rc;
    return real_euidaccess(path, mode);
}

EXPORT int eaccess(const char *path, int mode)
{
    int handled, rc = access_common(path, mode, &handled);
    if (handled) return rc;
    return real_eaccess ? real_eaccess(path, mode) : real_euidaccess(path, mode);
}

/* ------------------------------------------------------------------ */
/* syscall(): libuv closes and stats through it; libv4l2 opens, maps   */
/* and ioctls through it.                                              */
/* ------------------------------------------------------------------ */

EXPORT long syscall(long no, ...)
{
    va_list ap;
    va_start(ap, no);
    long a0 = va_arg(ap, long), a1 = va_arg(ap, long), a2 = va_arg(ap, long);
    long a3 = va_arg(ap, long), a4 = va_arg(ap, long), a5 = va_arg(ap, long);
    va_end(ap);
    init();
    switch (no) {
    case SYS_close:
        if (fake_forget((int)a0, 1)) return 0;
        break;
    case SYS_read:
        if (fd_lookup((int)a0)) { errno = EINVAL; return -1; }
        break;
    case SYS_ioctl: {
        if (fd_lookup((int)a0) && _IOC_TYPE((unsigned long)a1) == 'V')
            return fake_ioctl((int)a0, (unsigned long)a1, (void *)a2);
        break;
    }
    case SYS_openat:
        if (is_abs_or_cwd((int)a0, (const char *)a1)) {
            int fd = try_fake_open((const char *)a1, (int)a2);
            if (fd != -2) return fd;
        }
        break;
#ifdef SYS_open
    case SYS_open: {
        int fd = try_fake_open((const char *)a0, (int)a1);
        if (fd != -2) return fd;
        break;
    }
#endif
#ifdef SYS_mmap
    case SYS_mmap: {
        if (fd_lookup((int)a4))
            return (long)fake_mmap((int)a4, (void *)a0, (size_t)a1, (int)a2, (int)a3, (long long)a5);
        break;
    }
#endif
    case SYS_munmap:
        map_remove((void *)a0, (size_t)a1);
        break;
    case SYS_statx: {
        int handled, rc = statx_common((int)a0, (const char *)a1, (int)a2, (struct statx *)a4, &handled);
        if (handled) return rc;
        break;
    }
#if defined(SYS_newfstatat) && defined(__LP64__)
    case SYS_newfstatat: {
        const char *path = (const char *)a1;
        struct stat *st = (struct stat *)a2;
        if (((int)a3 & AT_EMPTY_PATH) && path && !path[0]) {
            struct node *n = fd_node((int)a0);
            if (n) { FILL_STAT(st, n); return 0; }
        } else if (is_abs_or_cwd((int)a0, path)) {
            STAT_PATH_HOOK(FILL_STAT(st, n))
        }
        break;
    }
#endif
#if defined(SYS_fstat) && defined(__LP64__)
    case SYS_fstat: {
        struct node *n = fd_node((int)a0);
        if (n) { FILL_STAT((struct stat *)a1, n); return 0; }
        break;
    }
#endif
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup3:
        forget_dup_target((int)a0, (int)a1);
        break;
    }
    return real_syscall(no, a0, a1, a2, a3, a4, a5);
}

__attribute__((constructor)) static void fake_init(void)
{
    init();
    g_page = sysconf(_SC_PAGESIZE);
    struct utsname u;
    unsigned maj = 0, min = 0, pat = 0;
    if (uname(&u) == 0) sscanf(u.release, "%u.%u.%u", &maj, &min, &pat);
    if (pat > 255) pat = 255;
    g_kernel_version = (maj << 16) | (min << 8) | pat;
    pthread_mutex_lock(&g_lock);
    config_refresh();
    ctl_refresh(1);
    pthread_mutex_unlock(&g_lock);
}
