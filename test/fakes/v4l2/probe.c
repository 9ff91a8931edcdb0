/*
 * probe: a small V4L2 capture client that prints JSON lines.
 *
 * It walks the same ioctl sequence a capture engine uses (QUERYCAP, ENUM_*,
 * S_FMT, S_PARM, REQBUFS, QUERYBUF+mmap or USERPTR, QBUF, STREAMON, wait +
 * DQBUF/QBUF, STREAMOFF, munmap, close) so the fake camera can be checked
 * from outside, and it verifies the frame header and pattern the fake
 * writes. It works against real cameras too; content checks then fail,
 * which is expected.
 *
 * Output: one JSON object per line, "event" says which. Exit status 0 when
 * every requested step succeeded, 1 on usage errors, 2 when a step failed.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/videodev2.h>

#define MAX_BUFS 32
#define MAX_CTRL_OPS 32

struct opts {
    const char *device;
    int caps, list, controls, ext_controls, do_stat, do_access, second_fd, check_eagain, maps;
    const char *gets[MAX_CTRL_OPS];
    int ngets;
    const char *sets[MAX_CTRL_OPS];
    int nsets;
    const char *set_exts[MAX_CTRL_OPS];
    int nset_exts;
    const char *try_fmt;
    uint32_t fourcc;
    uint32_t width, height, fps;
    int frames, buffers, userptr;
    const char *wait;
    int consumer_delay_ms;
    const char *save_dir;
    int save_every;
    const char *reopen;
    int reopen_timeout_ms, reopen_frames;
    int continue_on_error;
    int timeout_ms;
    int no_frame_lines;
    int stop_after_ms;
};

static struct opts o = {
    .device = "/dev/devplane-fake-video0",
    .width = 640, .height = 480, .fps = 30,
    .frames = 0, .buffers = 4, .wait = "poll",
    .save_every = 1, .reopen_timeout_ms = 5000, .reopen_frames = -1,
    .timeout_ms = 3000,
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *fourcc_str(uint32_t f, char out[5])
{
    for (int i = 0; i < 4; i++) {
        char c = (char)((f >> (8 * i)) & 0xff);
        out[i] = isprint((unsigned char)c) ? c : '?';
    }
    out[4] = 0;
    return out;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r;
}

static void print_error(const char *op, int err)
{
    printf("{\"event\":\"error\",\"op\":");
    json_str(op);
    printf(",\"errno\":%d,\"error\":", err);
    json_str(strerror(err));
    printf("}\n");
    fflush(stdout);
}

static void name2var(const char *name, char *out, size_t cap)
{
    size_t k = 0;
    int us = 0;
    for (; *name && k + 2 < cap; name++) {
        if (isalnum((unsigned char)*name)) {
            if (us) out[k++] = '_';
            us = 0;
            out[k++] = (char)tolower((unsigned char)*name);
        } else if (k) {
            us = 1;
        }
    }
    out[k] = 0;
}

/* ---------------------------------------------------------------- */

static int do_caps(int fd)
{
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    if (xioctl(fd, VIDIOC_QUERYCAP, &cap) < 0) {
        print_error("VIDIOC_QUERYCAP", errno);
        return 2;
    }
    printf("{\"event\":\"caps\",\"driver\":");
    json_str((const char *)cap.driver);
    printf(",\"card\":");
    json_str((const char *)cap.card);
    printf(",\"bus_info\":");
    json_str((const char *)cap.bus_info);
    printf(",\"version\":%u,\"capabilities\":%u,\"device_caps\":%u,\"video_capture\":%s,\"meta_capture\":%s,"
           "\"streaming\":%s}\n",
           cap.version, cap.capabilities, cap.device_caps,
           (cap.device_caps & V4L2_CAP_VIDEO_CAPTURE) ? "true" : "false",
           (cap.device_caps & V4L2_CAP_META_CAPTURE) ? "true" : "false",
           (cap.device_caps & V4L2_CAP_STREAMING) ? "true" : "false");
    return 0;
}

static int do_list(int fd)
{
    for (uint32_t type = V4L2_BUF_TYPE_VIDEO_CAPTURE;; type = V4L2_BUF_TYPE_META_CAPTURE) {
        for (uint32_t i = 0;; i++) {
            struct v4l2_fmtdesc d;
            memset(&d, 0, sizeof d);
            d.index = i;
            d.type = type;
            if (xioctl(fd, VIDIOC_ENUM_FMT, &d) < 0) break;
            char cc[5];
            printf("{\"event\":\"format\",\"type\":%u,\"fourcc\":\"%s\",\"description\":", type,
                   fourcc_str(d.pixelformat, cc));
            json_str((const char *)d.description);
            printf(",\"flags\":%u,\"sizes\":[", d.flags);
            for (uint32_t j = 0; type == V4L2_BUF_TYPE_VIDEO_CAPTURE; j++) {
                struct v4l2_frmsizeenum fs;
                memset(&fs, 0, sizeof fs);
                fs.index = j;
                fs.pixel_format = d.pixelformat;
                if (xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) < 0 || fs.type != V4L2_FRMSIZE_TYPE_DISCRETE) break;
                printf("%s{\"width\":%u,\"height\":%u,\"intervals\":[", j ? "," : "", fs.discrete.width,
                       fs.discrete.height);
                for (uint32_t k = 0;; k++) {
                    struct v4l2_frmivalenum fi;
                    memset(&fi, 0, sizeof fi);
                    fi.index = k;
                    fi.pixel_format = d.pixelformat;
                    fi.width = fs.discrete.width;
                    fi.height = fs.discrete.height;
                    if (xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &fi) < 0 || fi.type != V4L2_FRMIVAL_TYPE_DISCRETE)
                        break;
                    printf("%s[%u,%u]", k ? "," : "", fi.discrete.numerator, fi.discrete.denominator);
                }
                printf("]}");
            }
            printf("]}\n");
        }
        if (type == V4L2_BUF_TYPE_META_CAPTURE) break;
    }
    struct v4l2_input in;
    memset(&in, 0, sizeof in);
    if (xioctl(fd, VIDIOC_ENUMINPUT, &in) == 0) {
        int cur = -1;
        xioctl(fd, VIDIOC_G_INPUT, &cur);
        printf("{\"event\":\"input\",\"index\":%u,\"name\":", in.index);
        json_str((const char *)in.name);
        printf(",\"type\":%u,\"current\":%d}\n", in.type, cur);
    } else {
        print_error("VIDIOC_ENUMINPUT", errno);
    }
    return 0;
}

static int find_ctrl(int fd, const char *name, struct v4l2_queryctrl *out)
{
    char *end;
    long id = strtol(name, &end, 0);
    for (uint32_t qid = V4L2_CTRL_FLAG_NEXT_CTRL;;) {
        struct v4l2_queryctrl q;
        memset(&q, 0, sizeof q);
        q.id = qid;
        if (xioctl(fd, VIDIOC_QUERYCTRL, &q) < 0) break;
        char var[64];
        name2var((const char *)q.name, var, sizeof var);
        if ((*end == 0 && (uint32_t)id == q.id) || !strcmp(var, name)) {
            *out = q;
            return 0;
        }
        qid = q.id | V4L2_CTRL_FLAG_NEXT_CTRL;
    }
    return -1;
}

static int do_controls(int fd)
{
    for (uint32_t qid = V4L2_CTRL_FLAG_NEXT_CTRL;;) {
        struct v4l2_queryctrl q;
        memset(&q, 0, sizeof q);
        q.id = qid;
        if (xioctl(fd, VIDIOC_QUERYCTRL, &q) < 0) {
            if (errno != EINVAL) print_error("VIDIOC_QUERYCTRL", errno);
            break;
        }
        qid = q.id | V4L2_CTRL_FLAG_NEXT_CTRL;
        char var[64];
        name2var((const char *)q.name, var, sizeof var);
        printf("{\"event\":\"control\",\"id\":%u,\"name\":\"%s\",\"label\":", q.id, var);
        json_str((const char *)q.name);
        printf(",\"type\":%u,\"min\":%d,\"max\":%d,\"step\":%d,\"default\":%d,\"flags\":%u", q.type, q.minimum,
               q.maximum, q.step, q.default_value, q.flags);
        if (q.type != V4L2_CTRL_TYPE_CTRL_CLASS) {
            struct v4l2_control c = { .id = q.id };
            if (xioctl(fd, VIDIOC_G_CTRL, &c) == 0) printf(",\"value\":%d", c.value);
        }
        if (q.type == V4L2_CTRL_TYPE_MENU) {
            printf(",\"menu\":{");
            int first = 1;
            for (int i = q.minimum; i <= q.maximum; i++) {
                struct v4l2_querymenu m;
                memset(&m, 0, sizeof m);
                m.id = q.id;
                m.index = (uint32_t)i;
                if (xioctl(fd, VIDIOC_QUERYMENU, &m) < 0) continue;
                printf("%s\"%d\":", first ? "" : ",", i);
                json_str((const char *)m.name);
                first = 0;
            }
            printf("}");
        }
        printf("}\n");
    }
    return 0;
}

static int do_ext_controls(int fd)
{
    int n = 0;
    for (uint32_t qid = V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;;) {
        struct v4l2_query_ext_ctrl q;
        memset(&q, 0, sizeof q);
        q.id = qid;
        if (xioctl(fd, VIDIOC_QUERY_EXT_CTRL, &q) < 0) break;
        qid = q.id | V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
        char var[64];
        name2var(q.name, var, sizeof var);
        printf("{\"event\":\"ext_control\",\"id\":%u,\"name\":\"%s\",\"type\":%u,\"min\":%lld,\"max\":%lld,"
               "\"step\":%llu,\"default\":%lld,\"flags\":%u,\"elem_size\":%u",
               q.id, var, q.type, (long long)q.minimum, (long long)q.maximum, (unsigned long long)q.step,
               (long long)q.default_value, q.flags, q.elem_size);
        if (q.type != V4L2_CTRL_TYPE_CTRL_CLASS) {
            struct v4l2_ext_control c = { .id = q.id };
            struct v4l2_ext_controls e = { .which = V4L2_CTRL_WHICH_CUR_VAL, .count = 1, .controls = &c };
            if (xioctl(fd, VIDIOC_G_EXT_CTRLS, &e) == 0) printf(",\"value\":%d", c.value);
        }
        printf("}\n");
        n++;
    }
    return n ? 0 : 2;
}

static int do_get(int fd, const char *name)
{
    struct v4l2_queryctrl q;
    if (find_ctrl(fd, name, &q) < 0) {
        printf("{\"event\":\"get\",\"name\":\"%s\",\"found\":false}\n", name);
        return 2;
    }
    struct v4l2_control c = { .id = q.id };
    if (xioctl(fd, VIDIOC_G_CTRL, &c) < 0) {
        print_error("VIDIOC_G_CTRL", errno);
        return 2;
    }
    printf("{\"event\":\"get\",\"name\":\"%s\",\"id\":%u,\"value\":%d,\"flags\":%u}\n", name, q.id, c.value,
           q.flags);
    return 0;
}

static int do_set(int fd, const char *spec, int ext)
{
    char name[64];
    const char *eq = strchr(spec, '=');
    if (!eq || (size_t)(eq - spec) >= sizeof name) return 1;
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = 0;
    int value = atoi(eq + 1);
    struct v4l2_queryctrl q;
    if (find_ctrl(fd, name, &q) < 0) {
        printf("{\"event\":\"set\",\"name\":\"%s\",\"found\":false}\n", name);
        return 2;
    }
    int rc, err = 0, result = value;
    if (ext) {
        struct v4l2_ext_control c = { .id = q.id, .value = value };
        struct v4l2_ext_controls e = { .which = V4L2_CTRL_WHICH_CUR_VAL, .count = 1, .controls = &c };
        rc = xioctl(fd, VIDIOC_S_EXT_CTRLS, &e);
        if (rc < 0) err = errno;
        result = c.value;
    } else {
        struct v4l2_control c = { .id = q.id, .value = value };
        rc = xioctl(fd, VIDIOC_S_CTRL, &c);
        if (rc < 0) err = errno;
        result = c.value;
    }
    struct v4l2_control g = { .id = q.id };
    xioctl(fd, VIDIOC_G_CTRL, &g);
    printf("{\"event\":\"set\",\"ext\":%s,\"name\":\"%s\",\"requested\":%d,\"ok\":%s,\"errno\":%d,\"returned\":%d,"
           "\"now\":%d}\n",
           ext ? "true" : "false", name, value, rc == 0 ? "true" : "false", err, result, g.value);
    return rc == 0 ? 0 : 2;
}

static int do_stat(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        printf("{\"event\":\"stat\",\"path\":");
        json_str(path);
        printf(",\"ok\":false,\"errno\":%d}\n", errno);
        return 2;
    }
    printf("{\"event\":\"stat\",\"path\":");
    json_str(path);
    printf(",\"ok\":true,\"chr\":%s,\"mode\":%u,\"major\":%u,\"minor\":%u,\"gid\":%u}\n",
           S_ISCHR(st.st_mode) ? "true" : "false", (unsigned)st.st_mode, major(st.st_rdev), minor(st.st_rdev),
           (unsigned)st.st_gid);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Streaming                                                         */
/* ---------------------------------------------------------------- */

struct session {
    int fd;
    struct v4l2_pix_format pix;
    struct v4l2_fract tpf;
    int nbufs;
    void *addr[MAX_BUFS];
    size_t len[MAX_BUFS];
    int streaming;
    int epfd;
};

struct stats {
    int frames, errors, content_errors, eagain, error_flagged;
    long long first_seq, last_seq, gaps;
    uint64_t first_hdr_ns, last_hdr_ns, wall_start, wall_end;
    uint64_t max_latency_ns;
    int last_errno;
};

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Segment walk up to SOS, then entropy data up to EOI; returns NULL or a reason. */
static const char *jpeg_check(const uint8_t *p, size_t n)
{
    if (n < 4 || p[0] != 0xff || p[1] != 0xd8) return "no SOI";
    size_t i = 2;
    int sof = 0;
    for (;;) {
        if (i + 4 > n) return "truncated header";
        if (p[i] != 0xff) return "bad marker";
        uint8_t m = p[i + 1];
        size_t len = (size_t)(p[i + 2] << 8 | p[i + 3]);
        if (len < 2 || i + 2 + len > n) return "bad segment length";
        if (m == 0xc0) sof = 1;
        if (m == 0xc2 || m == 0xc1 || m == 0xc3) return "not baseline";
        i += 2 + len;
        if (m == 0xda) break;
    }
    if (!sof) return "no SOF0";
    for (; i + 1 < n; i++) {
        if (p[i] != 0xff) continue;
        uint8_t m = p[i + 1];
        if (m == 0x00 || (m >= 0xd0 && m <= 0xd7)) { i++; continue; }
        if (m == 0xd9) return i + 2 == n ? NULL : "data after EOI";
        return "unexpected marker in scan";
    }
    return "no EOI";
}

static const char *check_content(const struct session *s, const uint8_t *p, const struct v4l2_buffer *b,
                                 uint32_t *hdr_seq, uint64_t *hdr_ns, uint32_t *hdr_drops)
{
    const struct v4l2_pix_format *pix = &s->pix;
    size_t off = pix->pixelformat == V4L2_PIX_FMT_MJPEG ? 24 : 0;
    if (b->bytesused < off + 32) return "frame too short";
    const uint8_t *h = p + off;
    if (memcmp(h, "DPFK", 4)) return "no DPFK header";
    *hdr_seq = rd32(h + 4);
    *hdr_ns = rd64(h + 8);
    *hdr_drops = rd16(h + 30);
    if (*hdr_seq != b->sequence) return "header sequence differs from v4l2_buffer.sequence";
    uint64_t ts_us = (uint64_t)b->timestamp.tv_sec * 1000000ull + (uint64_t)b->timestamp.tv_usec;
    if (*hdr_ns / 1000 != ts_us) return "header time differs from v4l2_buffer.timestamp";
    if (rd32(h + 16) != pix->pixelformat || rd16(h + 20) != pix->width || rd16(h + 22) != pix->height)
        return "header format differs";
    if (rd32(h + 24) != b->bytesused) return "header byte count differs from bytesused";
    uint32_t w = pix->width, hh = pix->height, seq = b->sequence;
    uint32_t rows[3] = { 1, hh / 2, hh - 1 };
    switch (pix->pixelformat) {
    case V4L2_PIX_FMT_YUYV:
        if (b->bytesused != pix->sizeimage) return "bytesused != sizeimage";
        for (int r = 0; r < 3; r++) {
            const uint8_t *row = p + (size_t)rows[r] * pix->bytesperline;
            for (uint32_t x = 0; x < w; x++) {
                if (row[2 * x] != (uint8_t)(x + rows[r] + seq)) return "YUYV luma pattern";
                if (row[2 * x + 1] != 128) return "YUYV chroma pattern";
            }
        }
        break;
    case V4L2_PIX_FMT_NV12:
    case V4L2_PIX_FMT_GREY:
        if (b->bytesused != pix->sizeimage) return "bytesused != sizeimage";
        for (int r = 0; r < 3; r++) {
            const uint8_t *row = p + (size_t)rows[r] * w;
            for (uint32_t x = 0; x < w; x++)
                if (row[x] != (uint8_t)(x + rows[r] + seq)) return "luma pattern";
        }
        if (pix->pixelformat == V4L2_PIX_FMT_NV12)
            for (uint32_t x = 0; x < w; x++)
                if (p[(size_t)w * hh + x] != 128) return "NV12 chroma pattern";
        break;
    case V4L2_PIX_FMT_MJPEG: {
        const char *why = jpeg_check(p, b->bytesused);
        if (why) return why;
        if (p[20] != 0xff || p[21] != 0xe4) return "APP4 not at offset 20";
        break;
    }
    }
    return NULL;
}

static void session_cleanup(struct session *s)
{
    if (s->streaming) {
        int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        if (xioctl(s->fd, VIDIOC_STREAMOFF, &type) < 0 && errno != ENODEV) print_error("VIDIOC_STREAMOFF", errno);
        s->streaming = 0;
    }
    for (int i = 0; i < s->nbufs; i++) {
        if (!s->addr[i]) continue;
        if (o.userptr) free(s->addr[i]);
        else munmap(s->addr[i], s->len[i]);
        s->addr[i] = NULL;
    }
    if (s->nbufs) {
        struct v4l2_requestbuffers rb = { .count = 0, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                          .memory = o.userptr ? V4L2_MEMORY_USERPTR : V4L2_MEMORY_MMAP };
        if (xioctl(s->fd, VIDIOC_REQBUFS, &rb) < 0 && errno != ENODEV) print_error("VIDIOC_REQBUFS(0)", errno);
        s->nbufs = 0;
    }
    if (s->epfd >= 0) close(s->epfd);
    s->epfd = -1;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

static int save_frame(const struct session *s, const uint8_t *p, const struct v4l2_buffer *b)
{
    char path[4096];
    const char *ext = s->pix.pixelformat == V4L2_PIX_FMT_MJPEG ? "jpg" : "raw";
    snprintf(path, sizeof path, "%s/frame-%06u.%s", o.save_dir, b->sequence, ext);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(p, 1, b->bytesused, f);
    fclose(f);
    return 0;
}

/* Waits until the fd is readable; returns 1 ready, 0 timeout, -1 error. */
static int wait_ready(struct session *s)
{
    if (!strcmp(o.wait, "block")) return 1;
    if (!strcmp(o.wait, "select")) {
        fd_set rf;
        FD_ZERO(&rf);
        FD_SET(s->fd, &rf);
        struct timeval tv = { o.timeout_ms / 1000, (o.timeout_ms % 1000) * 1000 };
        int r = select(s->fd + 1, &rf, NULL, NULL, &tv);
        return r < 0 ? (errno == EINTR ? 0 : -1) : r > 0;
    }
    if (!strcmp(o.wait, "epoll")) {
        struct epoll_event ev;
        int r = epoll_wait(s->epfd, &ev, 1, o.timeout_ms);
        return r < 0 ? (errno == EINTR ? 0 : -1) : r > 0;
    }
    struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
    int r = poll(&pfd, 1, o.timeout_ms);
    return r < 0 ? (errno == EINTR ? 0 : -1) : r > 0;
}

struct stopper { int fd; int ms; volatile int requested; };

/* Stops the stream from another thread, as a capture engine's close() does
 * while its worker sits in poll() or a blocking DQBUF. */
static void *stopper_main(void *arg)
{
    struct stopper *sp = arg;
    usleep((useconds_t)sp->ms * 1000);
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    sp->requested = 1;
    xioctl(sp->fd, VIDIOC_STREAMOFF, &type);
    return NULL;
}

/* Opens, configures and streams n frames; returns 0, or the errno that ended it. */
static int run_session(const char *path, int nframes, struct stats *st)
{
    struct session s = { .fd = -1, .epfd = -1 };
    struct stopper sp = { .fd = -1 };
    pthread_t stopper;
    int have_stopper = 0;
    int blocking = !strcmp(o.wait, "block");
    s.fd = open(path, O_RDWR | O_CLOEXEC | (blocking ? 0 : O_NONBLOCK));
    if (s.fd < 0) {
        int e = errno;
        print_error("open", e);
        return e;
    }
    int rc = 0;
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    if (xioctl(s.fd, VIDIOC_QUERYCAP, &cap) < 0) {
        rc = errno;
        print_error("VIDIOC_QUERYCAP", rc);
        goto out;
    }
    uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING)) {
        printf("{\"event\":\"error\",\"op\":\"capabilities\",\"errno\":%d,\"error\":\"not a video capture node\","
               "\"device_caps\":%u}\n",
               ENOTTY, caps);
        rc = ENOTTY;
        goto out;
    }
    printf("{\"event\":\"open\",\"path\":");
    json_str(path);
    printf(",\"bus_info\":");
    json_str((const char *)cap.bus_info);
    printf("}\n");

    struct v4l2_format fmt;
    memset(&fmt, 0, sizeof fmt);
    fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    fmt.fmt.pix.pixelformat = o.fourcc;
    fmt.fmt.pix.width = o.width;
    fmt.fmt.pix.height = o.height;
    fmt.fmt.pix.field = V4L2_FIELD_NONE;
    if (xioctl(s.fd, VIDIOC_S_FMT, &fmt) < 0) {
        rc = errno;
        print_error("VIDIOC_S_FMT", rc);
        goto out;
    }
    s.pix = fmt.fmt.pix;
    struct v4l2_streamparm parm;
    memset(&parm, 0, sizeof parm);
    parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    parm.parm.capture.timeperframe.numerator = 1;
    parm.parm.capture.timeperframe.denominator = o.fps;
    if (xioctl(s.fd, VIDIOC_S_PARM, &parm) < 0) {
        rc = errno;
        print_error("VIDIOC_S_PARM", rc);
        goto out;
    }
    s.tpf = parm.parm.capture.timeperframe;
    char cc[5];
    printf("{\"event\":\"format\",\"fourcc\":\"%s\",\"width\":%u,\"height\":%u,\"bytesperline\":%u,"
           "\"sizeimage\":%u,\"field\":%u,\"colorspace\":%u,\"interval\":[%u,%u]}\n",
           fourcc_str(s.pix.pixelformat, cc), s.pix.width, s.pix.height, s.pix.bytesperline, s.pix.sizeimage,
           s.pix.field, s.pix.colorspace, s.tpf.numerator, s.tpf.denominator);

    struct v4l2_requestbuffers rb = { .count = (uint32_t)o.buffers, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                      .memory = o.userptr ? V4L2_MEMORY_USERPTR : V4L2_MEMORY_MMAP };
    if (xioctl(s.fd, VIDIOC_REQBUFS, &rb) < 0) {
        rc = errno;
        print_error("VIDIOC_REQBUFS", rc);
        goto out;
    }
    if (rb.count < 1 || rb.count > MAX_BUFS) {
        rc = ENOMEM;
        print_error("VIDIOC_REQBUFS count", rc);
        goto out;
    }
    s.nbufs = (int)rb.count;
    printf("{\"event\":\"reqbufs\",\"count\":%u,\"capabilities\":%u}\n", rb.count, rb.capabilities);
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < s.nbufs; i++) {
        struct v4l2_buffer b;
        memset(&b, 0, sizeof b);
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b.memory = rb.memory;
        b.index = (uint32_t)i;
        if (o.userptr) {
            size_t len = (s.pix.sizeimage + (size_t)page - 1) & ~((size_t)page - 1);
            s.addr[i] = aligned_alloc((size_t)page, len);
            if (!s.addr[i]) {
                rc = ENOMEM;
                goto out;
            }
            memset(s.addr[i], 0, len);
            s.len[i] = len;
            b.m.userptr = (unsigned long)s.addr[i];
            b.length = (uint32_t)len;
        } else {
            if (xioctl(s.fd, VIDIOC_QUERYBUF, &b) < 0) {
                rc = errno;
                print_error("VIDIOC_QUERYBUF", rc);
                goto out;
            }
            s.len[i] = b.length;
            s.addr[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd, b.m.offset);
            if (s.addr[i] == MAP_FAILED) {
                s.addr[i] = NULL;
                rc = errno;
                print_error("mmap", rc);
                goto out;
            }
        }
        if (xioctl(s.fd, VIDIOC_QBUF, &b) < 0) {
            rc = errno;
            print_error("VIDIOC_QBUF", rc);
            goto out;
        }
    }
    if (!strcmp(o.wait, "epoll")) {
        s.epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = s.fd };
        if (s.epfd < 0 || epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.fd, &ev) < 0) {
            rc = errno;
            print_error("epoll", rc);
            goto out;
        }
    }
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(s.fd, VIDIOC_STREAMON, &type) < 0) {
        rc = errno;
        print_error("VIDIOC_STREAMON", rc);
        goto out;
    }
    s.streaming = 1;
    st->wall_start = mono_ns();
    if (o.check_eagain && !blocking) {
        struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = rb.memory };
        int r = xioctl(s.fd, VIDIOC_DQBUF, &b);
        printf("{\"event\":\"eagain_check\",\"ok\":%s,\"errno\":%d}\n", r < 0 && errno == EAGAIN ? "true" : "false",
               r < 0 ? errno : 0);
        if (r == 0) xioctl(s.fd, VIDIOC_QBUF, &b);
    }
    if (o.second_fd) {
        int fd2 = open(path, O_RDWR | O_NONBLOCK);
        struct v4l2_requestbuffers rb2 = { .count = 2, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
        int r = fd2 >= 0 ? xioctl(fd2, VIDIOC_REQBUFS, &rb2) : -1;
        int e = r < 0 ? errno : 0;
        struct v4l2_format f2 = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
        f2.fmt.pix = s.pix;
        int r2 = fd2 >= 0 ? xioctl(fd2, VIDIOC_S_FMT, &f2) : -1;
        int e2 = r2 < 0 ? errno : 0;
        struct v4l2_capability c2;
        int r3 = fd2 >= 0 ? xioctl(fd2, VIDIOC_QUERYCAP, &c2) : -1;
        printf("{\"event\":\"second_fd\",\"open_ok\":%s,\"reqbufs_errno\":%d,\"s_fmt_errno\":%d,\"querycap_ok\":%s}\n",
               fd2 >= 0 ? "true" : "false", e, e2, r3 == 0 ? "true" : "false");
        if (fd2 >= 0) close(fd2);
    }
    sp.fd = s.fd;
    sp.ms = o.stop_after_ms;
    have_stopper = o.stop_after_ms > 0 && pthread_create(&stopper, NULL, stopper_main, &sp) == 0;
    while (st->frames < nframes) {
        int w = wait_ready(&s);
        if (w < 0) {
            rc = errno;
            print_error("wait", rc);
            goto out;
        }
        if (w == 0) {
            rc = ETIMEDOUT;
            print_error("wait", rc);
            goto out;
        }
        struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = rb.memory };
        if (xioctl(s.fd, VIDIOC_DQBUF, &b) < 0) {
            int e = errno;
            if (e == EAGAIN) {
                st->eagain++;
                continue;
            }
            if (e == EINVAL && sp.requested) {
                uint64_t woke = mono_ns();
                printf("{\"event\":\"stopped\",\"errno\":%d,\"after_ms\":%.1f}\n", e,
                       (double)(woke - st->wall_start) / 1e6);
                s.streaming = 0;
                break;
            }
            st->errors++;
            st->last_errno = e;
            print_error("VIDIOC_DQBUF", e);
            if (e == EIO && o.continue_on_error) continue;
            rc = e;
            goto out;
        }
        uint64_t now = mono_ns();
        const uint8_t *p = s.addr[b.index];
        uint32_t hseq = 0, hdrops = 0;
        uint64_t hns = 0;
        const char *why = check_content(&s, p, &b, &hseq, &hns, &hdrops);
        if (why) st->content_errors++;
        if (b.flags & V4L2_BUF_FLAG_ERROR) st->error_flagged++;
        if (st->frames == 0) {
            st->first_seq = b.sequence;
            st->first_hdr_ns = hns;
        } else {
            st->gaps += (long long)b.sequence - st->last_seq - 1;
        }
        st->last_seq = b.sequence;
        st->last_hdr_ns = hns;
        uint64_t lat = now > hns ? now - hns : 0;
        if (lat > st->max_latency_ns) st->max_latency_ns = lat;
        st->frames++;
        if (!o.no_frame_lines) {
            printf("{\"event\":\"frame\",\"index\":%u,\"seq\":%u,\"bytesused\":%u,\"length\":%u,\"flags\":%u,"
                   "\"ts_us\":%llu,\"monotonic\":%s,\"hdr_seq\":%u,\"hdr_ns\":%llu,\"hdr_drops\":%u,"
                   "\"latency_us\":%llu,\"content_ok\":%s",
                   b.index, b.sequence, b.bytesused, b.length, b.flags,
                   (unsigned long long)b.timestamp.tv_sec * 1000000ull + (unsigned long long)b.timestamp.tv_usec,
                   (b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC ? "true" : "false",
                   hseq, (unsigned long long)hns, hdrops, (unsigned long long)(lat / 1000), why ? "false" : "true");
            if (why) {
                printf(",\"content_error\":");
                json_str(why);
            }
            printf("}\n");
            fflush(stdout);
        }
        if (o.save_dir && (b.sequence % (uint32_t)o.save_every) == 0) save_frame(&s, p, &b);
        if (o.consumer_delay_ms) usleep((useconds_t)o.consumer_delay_ms * 1000);
        if (xioctl(s.fd, VIDIOC_QBUF, &b) < 0) {
            rc = errno;
            st->last_errno = rc;
            print_error("VIDIOC_QBUF", rc);
            goto out;
        }
    }
out:
    if (have_stopper) pthread_join(stopper, NULL);
    st->wall_end = mono_ns();
    session_cleanup(&s);
    return rc;
}

static void print_summary(const char *label, const struct stats *st, int rc)
{
    double span = st->frames > 1 ? (double)(st->last_hdr_ns - st->first_hdr_ns) / 1e9 : 0;
    long long delivered_span = st->last_seq - st->first_seq;
    double fps = span > 0 ? (double)delivered_span / span : 0;
    double wall = (double)(st->wall_end - st->wall_start) / 1e9;
    printf("{\"event\":\"summary\",\"session\":\"%s\",\"frames\":%d,\"first_seq\":%lld,\"last_seq\":%lld,"
           "\"gaps\":%lld,\"errors\":%d,\"last_errno\":%d,\"content_errors\":%d,\"error_flagged\":%d,\"eagain\":%d,"
           "\"fps\":%.3f,\"wall_s\":%.3f,\"max_latency_us\":%llu,\"end_errno\":%d}\n",
           label, st->frames, st->frames ? st->first_seq : -1, st->frames ? st->last_seq : -1, st->gaps, st->errors,
           st->last_errno, st->content_errors, st->error_flagged, st->eagain, fps, wall,
           (unsigned long long)(st->max_latency_ns / 1000), rc);
    fflush(stdout);
}

static void print_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "memfd:devplane-fake-v4l2-buf")) n++;
    if (f) fclose(f);
    printf("{\"event\":\"maps\",\"fake_buffer_mappings\":%d}\n", n);
}

static uint32_t parse_fourcc(const char *s)
{
    if (!strcasecmp(s, "MJPEG")) s = "MJPG";
    char c[4] = { ' ', ' ', ' ', ' ' };
    for (int i = 0; i < 4 && s[i]; i++) c[i] = (char)toupper((unsigned char)s[i]);
    return v4l2_fourcc(c[0], c[1], c[2], c[3]);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: probe [-d DEV] [--caps] [--list] [--controls] [--ext-controls] [--get NAME] [--set NAME=V]\n"
            "             [--set-ext NAME=V] [--stat] [--access] [--try FOURCC:WxH]\n"
            "             [-f FOURCC] [-s WxH] [-r FPS] [-n FRAMES] [-b BUFS] [--userptr]\n"
            "             [--wait poll|block|select|epoll] [--consumer-delay-ms N] [--save DIR] [--save-every K]\n"
            "             [--reopen PATH] [--reopen-timeout-ms N] [--reopen-frames N] [--continue-on-error]\n"
            "             [--check-eagain] [--second-fd] [--maps] [--timeout-ms N] [--no-frame-lines]\n"
            "             [--stop-after-ms N]\n");
}

int main(int argc, char **argv)
{
    enum {
        O_CAPS = 256, O_LIST, O_CONTROLS, O_EXT, O_GET, O_SET, O_SETEXT, O_STAT, O_ACCESS, O_TRY, O_USERPTR,
        O_WAIT, O_DELAY, O_SAVE, O_SAVE_EVERY, O_REOPEN, O_REOPEN_TO, O_REOPEN_N, O_CONT, O_EAGAIN, O_SECOND,
        O_MAPS, O_TIMEOUT, O_NOFRAMES, O_STOP,
    };
    static const struct option lo[] = {
        { "help", no_argument, 0, 'h' }, { "device", required_argument, 0, 'd' }, { "format", required_argument, 0, 'f' },
        { "size", required_argument, 0, 's' }, { "fps", required_argument, 0, 'r' },
        { "frames", required_argument, 0, 'n' }, { "buffers", required_argument, 0, 'b' },
        { "caps", no_argument, 0, O_CAPS }, { "list", no_argument, 0, O_LIST },
        { "controls", no_argument, 0, O_CONTROLS }, { "ext-controls", no_argument, 0, O_EXT },
        { "get", required_argument, 0, O_GET }, { "set", required_argument, 0, O_SET },
        { "set-ext", required_argument, 0, O_SETEXT }, { "stat", no_argument, 0, O_STAT },
        { "access", no_argument, 0, O_ACCESS }, { "try", required_argument, 0, O_TRY },
        { "userptr", no_argument, 0, O_USERPTR }, { "wait", required_argument, 0, O_WAIT },
        { "consumer-delay-ms", required_argument, 0, O_DELAY }, { "save", required_argument, 0, O_SAVE },
        { "save-every", required_argument, 0, O_SAVE_EVERY }, { "reopen", required_argument, 0, O_REOPEN },
        { "reopen-timeout-ms", required_argument, 0, O_REOPEN_TO },
        { "reopen-frames", required_argument, 0, O_REOPEN_N },
        { "continue-on-error", no_argument, 0, O_CONT }, { "check-eagain", no_argument, 0, O_EAGAIN },
        { "second-fd", no_argument, 0, O_SECOND }, { "maps", no_argument, 0, O_MAPS },
        { "timeout-ms", required_argument, 0, O_TIMEOUT }, { "no-frame-lines", no_argument, 0, O_NOFRAMES },
        { "stop-after-ms", required_argument, 0, O_STOP },
        { 0, 0, 0, 0 },
    };
    o.fourcc = V4L2_PIX_FMT_YUYV;
    int c;
    while ((c = getopt_long(argc, argv, "hd:f:s:r:n:b:", lo, NULL)) != -1) {
        switch (c) {
        case 'h': usage(); return 0;
        case 'd': o.device = optarg; break;
        case 'f': o.fourcc = parse_fourcc(optarg); break;
        case 's':
            if (sscanf(optarg, "%ux%u", &o.width, &o.height) != 2) { usage(); return 1; }
            break;
        case 'r': o.fps = (uint32_t)atoi(optarg); break;
        case 'n': o.frames = atoi(optarg); break;
        case 'b': o.buffers = atoi(optarg); break;
        case O_CAPS: o.caps = 1; break;
        case O_LIST: o.list = 1; break;
        case O_CONTROLS: o.controls = 1; break;
        case O_EXT: o.ext_controls = 1; break;
        case O_GET: if (o.ngets < MAX_CTRL_OPS) o.gets[o.ngets++] = optarg; break;
        case O_SET: if (o.nsets < MAX_CTRL_OPS) o.sets[o.nsets++] = optarg; break;
        case O_SETEXT: if (o.nset_exts < MAX_CTRL_OPS) o.set_exts[o.nset_exts++] = optarg; break;
        case O_STAT: o.do_stat = 1; break;
        case O_ACCESS: o.do_access = 1; break;
        case O_TRY: o.try_fmt = optarg; break;
        case O_USERPTR: o.userptr = 1; break;
        case O_WAIT: o.wait = optarg; break;
        case O_DELAY: o.consumer_delay_ms = atoi(optarg); break;
        case O_SAVE: o.save_dir = optarg; break;
        case O_SAVE_EVERY: o.save_every = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
        case O_REOPEN: o.reopen = optarg; break;
        case O_REOPEN_TO: o.reopen_timeout_ms = atoi(optarg); break;
        case O_REOPEN_N: o.reopen_frames = atoi(optarg); break;
        case O_CONT: o.continue_on_error = 1; break;
        case O_EAGAIN: o.check_eagain = 1; break;
        case O_SECOND: o.second_fd = 1; break;
        case O_MAPS: o.maps = 1; break;
        case O_TIMEOUT: o.timeout_ms = atoi(optarg); break;
        case O_NOFRAMES: o.no_frame_lines = 1; break;
        case O_STOP: o.stop_after_ms = atoi(optarg); break;
        default: usage(); return 1;
        }
    }
    int status = 0;
    if (o.do_stat && do_stat(o.device)) status = 2;
    if (o.do_access) {
        int r = access(o.device, R_OK | W_OK);
        printf("{\"event\":\"access\",\"ok\":%s,\"errno\":%d}\n", r == 0 ? "true" : "false", r < 0 ? errno : 0);
        if (r < 0) status = 2;
    }
    if (o.caps || o.list || o.controls || o.ext_controls || o.ngets || o.nsets || o.nset_exts || o.try_fmt) {
        int fd = open(o.device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            print_error("open", errno);
            return 2;
        }
        if (o.caps && do_caps(fd)) status = 2;
        if (o.list && do_list(fd)) status = 2;
        for (int i = 0; i < o.nsets; i++)
            if (do_set(fd, o.sets[i], 0)) status = 2;
        for (int i = 0; i < o.nset_exts; i++)
            if (do_set(fd, o.set_exts[i], 1)) status = 2;
        for (int i = 0; i < o.ngets; i++)
            if (do_get(fd, o.gets[i])) status = 2;
        if (o.controls && do_controls(fd)) status = 2;
        if (o.ext_controls && do_ext_controls(fd)) status = 2;
        if (o.try_fmt) {
            char f[16];
            unsigned w = 0, h = 0;
            if (sscanf(o.try_fmt, "%15[^:]:%ux%u", f, &w, &h) == 3) {
                struct v4l2_format fm = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
                fm.fmt.pix.pixelformat = parse_fourcc(f);
                fm.fmt.pix.width = w;
                fm.fmt.pix.height = h;
                int r = xioctl(fd, VIDIOC_TRY_FMT, &fm);
                char cc[5];
                printf("{\"event\":\"try_fmt\",\"ok\":%s,\"fourcc\":\"%s\",\"width\":%u,\"height\":%u,"
                       "\"sizeimage\":%u}\n",
                       r == 0 ? "true" : "false", fourcc_str(fm.fmt.pix.pixelformat, cc), fm.fmt.pix.width,
                       fm.fmt.pix.height, fm.fmt.pix.sizeimage);
            }
        }
        close(fd);
    }
    if (o.frames > 0) {
        struct stats st;
        memset(&st, 0, sizeof st);
        int rc = run_session(o.device, o.frames, &st);
        print_summary("first", &st, rc);
        if (rc) status = 2;
        if (rc == ENODEV && o.reopen) {
            uint64_t t0 = mono_ns();
            int first_errno = 0, fd = -1;
            while (mono_ns() - t0 < (uint64_t)o.reopen_timeout_ms * 1000000ull) {
                fd = open(o.reopen, O_RDWR | O_NONBLOCK | O_CLOEXEC);
                if (fd >= 0) break;
                if (!first_errno) first_errno = errno;
                usleep(5000);
            }
            double after = (double)(mono_ns() - t0) / 1e6;
            printf("{\"event\":\"reopen\",\"path\":");
            json_str(o.reopen);
            printf(",\"ok\":%s,\"after_ms\":%.1f,\"first_errno\":%d}\n", fd >= 0 ? "true" : "false", after,
                   first_errno);
            if (fd >= 0) {
                close(fd);
                struct stats st2;
                memset(&st2, 0, sizeof st2);
                int rc2 = run_session(o.reopen, o.reopen_frames >= 0 ? o.reopen_frames : o.frames, &st2);
                print_summary("reopened", &st2, rc2);
                status = rc2 ? 2 : 0;
            } else {
                status = 2;
            }
        }
    }
    if (o.maps) print_maps();
    return status;
}
