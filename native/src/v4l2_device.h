// One V4L2 device node, without streaming: opening it with errors a user can
// act on, its identity (to find it again after a replug), its formats and
// controls. Plain C++ with no Node-API, used by the capture thread and by
// workers that answer the editor.
#pragma once

#include "proc_holders.h"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace devplane {
namespace v4l2 {

// "YUYV", "MJPG" as four printable characters.
std::string fourccText(uint32_t fourcc);
// The name msg.frame.format carries: "MJPEG", "YUYV", "NV12", "RGB24", "GREY",
// "H264", else the fourcc itself.
std::string formatName(uint32_t fourcc);
// GStreamer caps for a ring carrying these frames.
std::string formatCaps(uint32_t fourcc, uint32_t width, uint32_t height, uint32_t stride);
bool isCompressed(uint32_t fourcc);

// What QUERYCAP says, reduced to what identifies a camera and what the node can do.
struct Identity {
  std::string driver;
  std::string card;
  std::string busInfo;
  uint32_t caps = 0;        // the node's own capabilities (device_caps when present)
  bool capture = false;     // single-planar video capture with streaming
  bool meta = false;        // a metadata node (uvcvideo's second node)
  bool multiplanar = false; // multi-planar capture only
  dev_t rdev = 0;
};

struct OpenResult {
  int fd = -1;
  std::string code;     // ENODEV, EBUSY, EACCES, ENOTCAPTURE, EIO
  std::string message;  // a sentence for the user
  Identity id;
};

struct OpenOptions {
  std::string procRoot = "/proc";
  std::vector<std::string> extraPaths;
  // Refuse nodes that cannot capture video, naming the node that can.
  bool requireCapture = true;
};

// Opens read-write and non-blocking, then QUERYCAP. On failure fd is -1 and
// code/message say why: a busy device names the process that holds it, a
// permission problem names the group to join, a metadata node names the
// camera's capture node.
OpenResult openDevice(const std::string &path, const OpenOptions &opts);

// ioctl retried on EINTR.
int xioctl(int fd, unsigned long request, void *arg);

// Device paths to look at when listing cameras or searching for one that came
// back: /dev/video*, then the extra paths (devices outside /dev, test fakes).
std::vector<std::string> candidatePaths(const std::vector<std::string> &extra);
// /dev/v4l/by-id and by-path links that point at this device (by st_rdev).
std::vector<std::string> stableLinks(dev_t rdev);

// QUERYCAP on a path without keeping it open; false when it cannot be opened.
bool probeIdentity(const std::string &path, Identity *out);

using Holder = ProcessHolder;
// Processes that have the device open, found through <procRoot>/<pid>/fd.
std::vector<Holder> findHolders(const std::string &procRoot, const std::string &path, dev_t rdev);

// The group that owns the device node and may open it ("video"), or "".
std::string deviceGroup(const std::string &path);

// ---------------------------------------------------------------- formats

struct FrameInterval {
  uint32_t numerator;  // time per frame, numerator / denominator seconds
  uint32_t denominator;
};

struct FrameSize {
  bool stepwise = false;
  uint32_t width = 0, height = 0;                          // discrete
  uint32_t minWidth = 0, maxWidth = 0, stepWidth = 0;      // stepwise or continuous
  uint32_t minHeight = 0, maxHeight = 0, stepHeight = 0;
  std::vector<FrameInterval> intervals;                    // discrete intervals at this size
  bool intervalRange = false;                              // stepwise or continuous intervals
  FrameInterval minInterval{0, 0}, maxInterval{0, 0};
};

struct FormatInfo {
  uint32_t fourcc = 0;
  std::string description;
  bool compressed = false;
  bool emulated = false;
  std::vector<FrameSize> sizes;
};

std::vector<FormatInfo> enumerateFormats(int fd);

// ---------------------------------------------------------------- controls

struct ControlInfo {
  uint32_t id = 0;
  std::string name;   // v4l2-ctl style: "white_balance_temperature_auto"
  std::string label;  // as the driver names it: "White Balance Temperature, Auto"
  uint32_t type = 0;
  std::string typeName;  // "int", "bool", "menu", "intmenu", "button", "int64", "class", ...
  int64_t minimum = 0, maximum = 0, step = 0, defaultValue = 0;
  int64_t value = 0;
  bool hasValue = false;
  uint32_t flags = 0;
  bool inactive = false, readOnly = false;
  std::vector<std::pair<int64_t, std::string>> menu;
};

// Every control but class headings, with current values and menu entries.
std::vector<ControlInfo> listControls(int fd);

// v4l2-ctl's rendering of a control's label: lowercase, runs of other
// characters as one "_".
std::string controlVarName(const std::string &label);

struct ControlRequest {
  std::string name;     // a name from listControls, or a decimal/hex id
  int64_t value = 0;
  std::string text;     // a menu entry by its label, when not empty
};

struct ControlResult {
  std::string name;
  uint32_t id = 0;
  bool ok = false;
  int64_t value = 0;     // the value read back after setting it
  std::string code;      // ENOCONTROL, EINACTIVE, ERANGE, EINVAL, EIO, ENODEV
  std::string message;
};

// Sets each control in order (order matters: "exposure_auto" before
// "exposure_absolute") and reads it back.
std::vector<ControlResult> applyControls(int fd, const std::vector<ControlRequest> &requests);

}  // namespace v4l2
}  // namespace devplane
