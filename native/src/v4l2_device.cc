#include "v4l2_device.h"
#include "proc_holders.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

namespace devplane {
namespace v4l2 {

namespace {

std::string quoted(const std::string &s) { return "\"" + s + "\""; }

bool allDigits(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

std::string cstr(const uint8_t *s, size_t cap) { return std::string(reinterpret_cast<const char *>(s), strnlen(reinterpret_cast<const char *>(s), cap)); }

Identity identityOf(const v4l2_capability &cap) {
  Identity id;
  id.driver = cstr(cap.driver, sizeof(cap.driver));
  id.card = cstr(cap.card, sizeof(cap.card));
  id.busInfo = cstr(cap.bus_info, sizeof(cap.bus_info));
  // capabilities describes the whole device (every node of a UVC camera);
  // only device_caps says what this node can do.
  id.caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
  id.capture = (id.caps & V4L2_CAP_VIDEO_CAPTURE) && (id.caps & V4L2_CAP_STREAMING);
  id.meta = (id.caps & V4L2_CAP_META_CAPTURE) && !(id.caps & V4L2_CAP_VIDEO_CAPTURE);
  id.multiplanar = (id.caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE) && !(id.caps & V4L2_CAP_VIDEO_CAPTURE);
  return id;
}

std::string captureSibling(const std::string &path, const Identity &id, const std::vector<std::string> &extra) {
  if (id.busInfo.empty()) return "";
  for (const std::string &p : candidatePaths(extra)) {
    if (p == path) continue;
    Identity other;
    if (probeIdentity(p, &other) && other.capture && other.busInfo == id.busInfo && other.card == id.card) return p;
  }
  return "";
}

std::string notCaptureMessage(const std::string &path, const Identity &id, const std::vector<std::string> &extra) {
  std::string dev = path + " (" + quoted(id.card) + ")";
  if (id.meta) {
    std::string sibling = captureSibling(path, id, extra);
    std::string msg = path + " is the metadata node of camera " + quoted(id.card) + " and carries no images; ";
    return msg + (sibling.empty() ? "use the camera's other video node (\"v4l2-ctl --list-devices\" lists them)"
                                  : "use its video node, " + sibling);
  }
  if (id.multiplanar)
    return dev + " captures multi-planar video only (a codec or a CSI camera's raw node); v4l2-capture streams "
                 "single-planar cameras such as USB webcams";
  if ((id.caps & V4L2_CAP_VIDEO_CAPTURE) && !(id.caps & V4L2_CAP_STREAMING))
    return dev + " cannot stream (no V4L2_CAP_STREAMING), which v4l2-capture needs";
  return dev + " is not a video capture device (it may be an output, a codec or a radio)";
}

}  // namespace

int xioctl(int fd, unsigned long request, void *arg) {
  int r;
  do r = ioctl(fd, request, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

std::string fourccText(uint32_t f) {
  std::string s(4, ' ');
  for (int i = 0; i < 4; i++) {
    char c = char((f >> (8 * i)) & 0xff);
    s[i] = std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string formatName(uint32_t f) {
  switch (f) {
    case V4L2_PIX_FMT_MJPEG: return "MJPEG";
    case V4L2_PIX_FMT_JPEG: return "JPEG";
    case V4L2_PIX_FMT_YUYV: return "YUYV";
    case V4L2_PIX_FMT_NV12: return "NV12";
    case V4L2_PIX_FMT_RGB24: return "RGB24";
    case V4L2_PIX_FMT_BGR24: return "BGR24";
    case V4L2_PIX_FMT_GREY: return "GREY";
    case V4L2_PIX_FMT_H264: return "H264";
    default: return fourccText(f);
  }
}

bool isCompressed(uint32_t f) {
  return f == V4L2_PIX_FMT_MJPEG || f == V4L2_PIX_FMT_JPEG || f == V4L2_PIX_FMT_H264;
}

std::string formatCaps(uint32_t f, uint32_t width, uint32_t height, uint32_t stride) {
  if (f == V4L2_PIX_FMT_MJPEG || f == V4L2_PIX_FMT_JPEG) return "image/jpeg";
  if (f == V4L2_PIX_FMT_H264) return "video/x-h264,stream-format=byte-stream";
  const char *raw = nullptr;
  switch (f) {
    case V4L2_PIX_FMT_YUYV: raw = "YUY2"; break;
    case V4L2_PIX_FMT_UYVY: raw = "UYVY"; break;
    case V4L2_PIX_FMT_NV12: raw = "NV12"; break;
    case V4L2_PIX_FMT_NV21: raw = "NV21"; break;
    case V4L2_PIX_FMT_YUV420: raw = "I420"; break;
    case V4L2_PIX_FMT_RGB24: raw = "RGB"; break;
    case V4L2_PIX_FMT_BGR24: raw = "BGR"; break;
    case V4L2_PIX_FMT_GREY: raw = "GRAY8"; break;
    default: return "application/octet-stream";
  }
  return std::string("video/x-raw,format=") + raw + ",width=" + std::to_string(width) +
         ",height=" + std::to_string(height) + ",stride=" + std::to_string(stride);
}

// ---------------------------------------------------------------- paths

std::vector<std::string> candidatePaths(const std::vector<std::string> &extra) {
  std::vector<std::pair<long, std::string>> found;
  if (DIR *d = opendir("/dev")) {
    while (dirent *e = readdir(d)) {
      if (std::strncmp(e->d_name, "video", 5) != 0 || !allDigits(e->d_name + 5)) continue;
      found.emplace_back(std::atol(e->d_name + 5), std::string("/dev/") + e->d_name);
    }
    closedir(d);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto &f : found)
    if (seen.insert(f.second).second) out.push_back(f.second);
  for (const std::string &p : extra)
    if (!p.empty() && seen.insert(p).second) out.push_back(p);
  return out;
}

std::vector<std::string> stableLinks(dev_t rdev) {
  std::vector<std::string> out;
  if (!rdev) return out;
  for (const char *dir : {"/dev/v4l/by-id", "/dev/v4l/by-path"}) {
    DIR *d = opendir(dir);
    if (!d) continue;
    std::vector<std::string> names;
    while (dirent *e = readdir(d))
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string &n : names) {
      std::string p = std::string(dir) + "/" + n;
      struct stat st;
      if (stat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == rdev) out.push_back(p);
    }
  }
  return out;
}

bool probeIdentity(const std::string &path, Identity *out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) return false;
  int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  v4l2_capability cap{};
  bool ok = xioctl(fd, VIDIOC_QUERYCAP, &cap) == 0;
  ::close(fd);
  if (!ok) return false;
  *out = identityOf(cap);
  out->rdev = st.st_rdev;
  return true;
}

std::vector<Holder> findHolders(const std::string &procRoot, const std::string &path, dev_t rdev) {
  return processesHolding(procRoot, [&](const std::string &target) {
    if (target == path) return true;
    // The same camera through another name (a by-id link, a bind mount).
    struct stat st;
    return rdev && target.rfind("/dev/", 0) == 0 && stat(target.c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
           st.st_rdev == rdev;
  });
}

std::string deviceGroup(const std::string &path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  if (!(st.st_mode & (S_IRGRP | S_IWGRP))) return "";
  char buf[4096];
  struct group g, *res = nullptr;
  if (getgrgid_r(st.st_gid, &g, buf, sizeof(buf), &res) != 0 || !res) return std::to_string(st.st_gid);
  return res->gr_name;
}

OpenResult openDevice(const std::string &path, const OpenOptions &opts) {
  OpenResult r;
  std::string cam = "camera " + path;
  int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    switch (e) {
      case ENOENT:
      case ENXIO:
      case ENODEV:
        r.code = "ENODEV";
        r.message = cam + " is not connected (" + std::strerror(e) + ")";
        break;
      case EBUSY: {
        r.code = "EBUSY";
        struct stat st;
        dev_t rdev = stat(path.c_str(), &st) == 0 ? st.st_rdev : 0;
        std::vector<Holder> holders = findHolders(opts.procRoot, path, rdev);
        r.message = cam + " is busy";
        if (holders.empty()) {
          r.message += ": another program is using it (one this user cannot see; \"sudo fuser -v " + path +
                       "\" finds it)";
        } else {
          r.message += ": held by ";
          for (size_t i = 0; i < holders.size(); i++)
            r.message += (i ? ", " : "") + holders[i].command + " (pid " + std::to_string(holders[i].pid) + ")";
        }
        break;
      }
      case EACCES:
      case EPERM: {
        r.code = "EACCES";
        std::string group = deviceGroup(path);
        r.message = "permission denied opening " + cam + ": ";
        if (group.empty() || group == "root")
          r.message += "only root may open it; a udev rule must give it to a group such as video";
        else
          r.message += "add the user running Node-RED to the " + group + " group (sudo usermod -aG " + group +
                       " $USER), then log in again and restart Node-RED";
        break;
      }
      default:
        r.code = "EIO";
        r.message = "cannot open " + cam + ": " + std::strerror(e);
    }
    return r;
  }
  v4l2_capability cap{};
  if (xioctl(fd, VIDIOC_QUERYCAP, &cap) < 0) {
    int e = errno;
    ::close(fd);
    if (e == ENODEV) {
      r.code = "ENODEV";
      r.message = cam + " went away while it was being opened";
    } else {
      r.code = "ENOTCAPTURE";
      r.message = path + " is not a V4L2 device (" + std::strerror(e) + ")";
    }
    return r;
  }
  r.id = identityOf(cap);
  struct stat st;
  if (fstat(fd, &st) == 0) r.id.rdev = st.st_rdev;
  if (opts.requireCapture && !r.id.capture) {
    ::close(fd);
    r.code = "ENOTCAPTURE";
    r.message = notCaptureMessage(path, r.id, opts.extraPaths);
    return r;
  }
  r.fd = fd;
  return r;
}

// ---------------------------------------------------------------- formats

namespace {

std::vector<FrameInterval> discreteIntervals(int fd, uint32_t fourcc, uint32_t w, uint32_t h, FrameSize *size) {
  std::vector<FrameInterval> out;
  for (uint32_t i = 0; i < 64; i++) {
    v4l2_frmivalenum fi{};
    fi.index = i;
    fi.pixel_format = fourcc;
    fi.width = w;
    fi.height = h;
    if (xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &fi) < 0) break;
    if (fi.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
      out.push_back({fi.discrete.numerator, fi.discrete.denominator});
    } else {
      size->intervalRange = true;
      size->minInterval = {fi.stepwise.min.numerator, fi.stepwise.min.denominator};
      size->maxInterval = {fi.stepwise.max.numerator, fi.stepwise.max.denominator};
      break;
    }
  }
  return out;
}

}  // namespace

std::vector<FormatInfo> enumerateFormats(int fd) {
  std::vector<FormatInfo> out;
  for (uint32_t i = 0; i < 256; i++) {
    v4l2_fmtdesc d{};
    d.index = i;
    d.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(fd, VIDIOC_ENUM_FMT, &d) < 0) break;
    FormatInfo f;
    f.fourcc = d.pixelformat;
    f.description = cstr(d.description, sizeof(d.description));
    f.compressed = d.flags & V4L2_FMT_FLAG_COMPRESSED;
    f.emulated = d.flags & V4L2_FMT_FLAG_EMULATED;
    for (uint32_t j = 0; j < 1024; j++) {
      v4l2_frmsizeenum fs{};
      fs.index = j;
      fs.pixel_format = d.pixelformat;
      if (xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) < 0) break;
      FrameSize size;
      if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
        size.width = fs.discrete.width;
        size.height = fs.discrete.height;
        size.intervals = discreteIntervals(fd, d.pixelformat, size.width, size.height, &size);
        f.sizes.push_back(size);
      } else {
        size.stepwise = true;
        size.minWidth = fs.stepwise.min_width;
        size.maxWidth = fs.stepwise.max_width;
        size.stepWidth = fs.type == V4L2_FRMSIZE_TYPE_CONTINUOUS ? 1 : fs.stepwise.step_width;
        size.minHeight = fs.stepwise.min_height;
        size.maxHeight = fs.stepwise.max_height;
        size.stepHeight = fs.type == V4L2_FRMSIZE_TYPE_CONTINUOUS ? 1 : fs.stepwise.step_height;
        size.width = size.maxWidth;
        size.height = size.maxHeight;
        // Intervals depend on the size; the largest size bounds what the
        // others can do.
        size.intervals = discreteIntervals(fd, d.pixelformat, size.maxWidth, size.maxHeight, &size);
        f.sizes.push_back(size);
        break;
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

// ---------------------------------------------------------------- controls

std::string controlVarName(const std::string &label) {
  std::string out;
  bool pending = false;
  for (unsigned char c : label) {
    if (std::isalnum(c)) {
      if (pending && !out.empty()) out += '_';
      pending = false;
      out += char(std::tolower(c));
    } else {
      pending = true;
    }
  }
  return out;
}

namespace {

const char *controlTypeName(uint32_t t) {
  switch (t) {
    case V4L2_CTRL_TYPE_INTEGER: return "int";
    case V4L2_CTRL_TYPE_BOOLEAN: return "bool";
    case V4L2_CTRL_TYPE_MENU: return "menu";
    case V4L2_CTRL_TYPE_INTEGER_MENU: return "intmenu";
    case V4L2_CTRL_TYPE_BUTTON: return "button";
    case V4L2_CTRL_TYPE_INTEGER64: return "int64";
    case V4L2_CTRL_TYPE_CTRL_CLASS: return "class";
    case V4L2_CTRL_TYPE_STRING: return "string";
    case V4L2_CTRL_TYPE_BITMASK: return "bitmask";
    default: return "other";
  }
}

bool hasIntValue(uint32_t t) {
  return t == V4L2_CTRL_TYPE_INTEGER || t == V4L2_CTRL_TYPE_BOOLEAN || t == V4L2_CTRL_TYPE_MENU ||
         t == V4L2_CTRL_TYPE_INTEGER_MENU || t == V4L2_CTRL_TYPE_BITMASK;
}

}  // namespace

std::vector<ControlInfo> listControls(int fd) {
  std::vector<ControlInfo> out;
  uint32_t next = V4L2_CTRL_FLAG_NEXT_CTRL;
  for (int guard = 0; guard < 1024; guard++) {
    v4l2_queryctrl q{};
    q.id = next;
    if (xioctl(fd, VIDIOC_QUERYCTRL, &q) < 0) break;
    next = q.id | V4L2_CTRL_FLAG_NEXT_CTRL;
    if (q.type == V4L2_CTRL_TYPE_CTRL_CLASS || (q.flags & V4L2_CTRL_FLAG_DISABLED)) continue;
    ControlInfo c;
    c.id = q.id;
    c.label = cstr(q.name, sizeof(q.name));
    c.name = controlVarName(c.label);
    c.type = q.type;
    c.typeName = controlTypeName(q.type);
    c.minimum = q.minimum;
    c.maximum = q.maximum;
    c.step = q.step;
    c.defaultValue = q.default_value;
    c.flags = q.flags;
    c.inactive = q.flags & V4L2_CTRL_FLAG_INACTIVE;
    c.readOnly = q.flags & V4L2_CTRL_FLAG_READ_ONLY;
    if (hasIntValue(q.type) && !(q.flags & V4L2_CTRL_FLAG_WRITE_ONLY)) {
      v4l2_control v{};
      v.id = q.id;
      if (xioctl(fd, VIDIOC_G_CTRL, &v) == 0) {
        c.value = v.value;
        c.hasValue = true;
      }
    }
    if (q.type == V4L2_CTRL_TYPE_MENU || q.type == V4L2_CTRL_TYPE_INTEGER_MENU) {
      for (int64_t i = q.minimum; i <= q.maximum && i - q.minimum < 256; i++) {
        v4l2_querymenu m{};
        m.id = q.id;
        m.index = uint32_t(i);
        if (xioctl(fd, VIDIOC_QUERYMENU, &m) < 0) continue;
        c.menu.emplace_back(i, q.type == V4L2_CTRL_TYPE_MENU ? cstr(m.name, sizeof(m.name))
                                                             : std::to_string(static_cast<long long>(m.value)));
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {

std::string firstToken(const std::string &name) {
  size_t u = name.find('_');
  return u == std::string::npos ? name : name.substr(0, u);
}

// The control that switches this one's automatic mode, by uvcvideo's names
// (old: exposure_auto, focus_auto, white_balance_temperature_auto; new:
// auto_exposure, focus_automatic_continuous, white_balance_automatic).
std::string autoPartner(const ControlInfo &c, const std::vector<ControlInfo> &all) {
  std::string first = firstToken(c.name);
  for (const ControlInfo &o : all) {
    if (o.id == c.id || o.name.find("auto") == std::string::npos) continue;
    if (o.name.find(first) != std::string::npos) return o.name;
  }
  return "";
}

std::string rangeText(const ControlInfo &c) {
  if (!c.menu.empty()) {
    std::string s;
    for (auto &m : c.menu) s += (s.empty() ? "" : ", ") + std::to_string(static_cast<long long>(m.first)) + " " + m.second;
    return s;
  }
  return std::to_string(static_cast<long long>(c.minimum)) + " to " + std::to_string(static_cast<long long>(c.maximum));
}

bool equalsIgnoreCase(const std::string &a, const std::string &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

std::vector<ControlResult> applyControls(int fd, const std::vector<ControlRequest> &requests) {
  std::vector<ControlResult> out;
  if (requests.empty()) return out;
  std::vector<ControlInfo> all = listControls(fd);
  for (const ControlRequest &req : requests) {
    ControlResult r;
    r.name = req.name;
    const ControlInfo *c = nullptr;
    char *end = nullptr;
    unsigned long asId = std::strtoul(req.name.c_str(), &end, 0);
    bool numeric = !req.name.empty() && end && *end == 0;
    for (const ControlInfo &x : all)
      if (x.name == req.name || (numeric && x.id == asId)) c = &x;
    if (!c) {
      r.code = "ENOCONTROL";
      std::string names;
      for (const ControlInfo &x : all) names += (names.empty() ? "" : ", ") + x.name;
      r.message = "the camera has no control " + quoted(req.name) + (names.empty() ? "" : " (it has " + names + ")");
      out.push_back(r);
      continue;
    }
    r.name = c->name;
    r.id = c->id;
    int64_t value = req.value;
    if (!req.text.empty()) {
      bool found = false;
      for (auto &m : c->menu)
        if (equalsIgnoreCase(m.second, req.text)) {
          value = m.first;
          found = true;
        }
      if (!found) {
        r.code = "EINVAL";
        r.message = c->name + " has no entry " + quoted(req.text) + " (it has " + rangeText(*c) + ")";
        out.push_back(r);
        continue;
      }
    }
    if (c->readOnly || c->type == V4L2_CTRL_TYPE_CTRL_CLASS) {
      r.code = "EINVAL";
      r.message = c->name + " is read-only";
      out.push_back(r);
      continue;
    }
    int rc;
    if (c->type == V4L2_CTRL_TYPE_INTEGER64) {
      v4l2_ext_control ec{};
      ec.id = c->id;
      ec.value64 = value;
      v4l2_ext_controls ecs{};
      ecs.which = V4L2_CTRL_WHICH_CUR_VAL;
      ecs.count = 1;
      ecs.controls = &ec;
      rc = xioctl(fd, VIDIOC_S_EXT_CTRLS, &ecs);
    } else {
      v4l2_control v{};
      v.id = c->id;
      v.value = int32_t(value);
      rc = xioctl(fd, VIDIOC_S_CTRL, &v);
    }
    if (rc < 0) {
      int e = errno;
      switch (e) {
        case EACCES: {
          r.code = "EINACTIVE";
          std::string partner = autoPartner(*c, all);
          r.message = c->name + " cannot be set while its automatic mode is on" +
                      (partner.empty() ? std::string(": turn that off first") : ": set " + partner + " to manual first");
          break;
        }
        case ERANGE:
        case EINVAL:
          r.code = e == ERANGE ? "ERANGE" : "EINVAL";
          r.message = std::to_string(static_cast<long long>(value)) + " is not a valid value for " + c->name + " (" +
                      rangeText(*c) + ")";
          break;
        case ENODEV:
          r.code = "ENODEV";
          r.message = "the camera went away while " + c->name + " was being set";
          break;
        default:
          r.code = "EIO";
          r.message = "setting " + c->name + " failed: " + std::strerror(e);
      }
      out.push_back(r);
      continue;
    }
    r.ok = true;
    r.value = value;
    if (hasIntValue(c->type)) {
      v4l2_control v{};
      v.id = c->id;
      if (xioctl(fd, VIDIOC_G_CTRL, &v) == 0) r.value = v.value;
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace v4l2
}  // namespace devplane
