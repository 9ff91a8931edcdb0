// UeventMonitor: a native thread that reads NETLINK_KOBJECT_UEVENT and hands
// every message, as raw bytes, to JavaScript. Parsing (both wire formats),
// filtering and settling live in lib/devices, where they are unit-tested.
#include "uevent_monitor.h"

#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace devplane {

namespace {

// Multicast groups of NETLINK_KOBJECT_UEVENT: 1 carries the kernel's own
// events, 2 udevd's re-broadcast after rules ran (device nodes and
// permissions exist by then).
constexpr unsigned kKernelGroup = 1;
constexpr unsigned kUdevGroup = 2;
constexpr size_t kMaxQueued = 4096;

struct Message {
  std::vector<uint8_t> bytes;
  uint64_t dropped = 0;
};

class MonitorWrap : public Napi::ObjectWrap<MonitorWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "UeventMonitor",
                       {InstanceMethod<&MonitorWrap::Stop>("stop"), InstanceAccessor<&MonitorWrap::Group>("group")});
  }

  // UeventMonitor(onMessages(buffers[], dropped), { group: "auto" | "udev" | "kernel" })
  MonitorWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<MonitorWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction())
      throw Napi::TypeError::New(env, "UeventMonitor(callback, options) needs a callback");
    std::string group = "auto";
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Value g = info[1].As<Napi::Object>().Get("group");
      if (g.IsString()) group = g.As<Napi::String>();
    }
    if (group == "auto") {
      // udevd only listens (and re-broadcasts) when it runs; its control socket says so.
      struct stat st;
      group = stat("/run/udev/control", &st) == 0 ? "udev" : "kernel";
    }
    if (group != "udev" && group != "kernel")
      throw Napi::TypeError::New(env, "group must be \"auto\", \"udev\" or \"kernel\"");
    udev_ = group == "udev";

    sock_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
    if (sock_ < 0) throwErrno(env, "cannot open a uevent socket");
    // Bursts (a hub with ten devices) overflow the default buffer; the forced
    // size needs CAP_NET_ADMIN, so fall back to the ordinary one.
    int size = 4 << 20;
    if (setsockopt(sock_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
      setsockopt(sock_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    int on = 1;
    setsockopt(sock_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = udev_ ? kUdevGroup : kKernelGroup;
    if (bind(sock_, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
      int e = errno;
      close(sock_);
      sock_ = -1;
      errno = e;
      throwErrno(env, "cannot listen for uevents");
    }
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) {
      close(sock_);
      sock_ = -1;
      throwErrno(env, "cannot create an eventfd");
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "devplane-uevent-monitor", 0, 1);
    tsfn_.Unref(env);
    thread_ = std::thread([this] { run(); });
  }

  ~MonitorWrap() override { shutdown(); }

 private:
  [[noreturn]] static void throwErrno(Napi::Env env, const std::string &what) {
    Napi::Error err = Napi::Error::New(env, what + ": " + std::strerror(errno));
    err.Set("code", Napi::String::New(env, errno == EPERM || errno == EACCES ? "EACCES" : "ESYSTEM"));
    throw err;
  }

  Napi::Value Stop(const Napi::CallbackInfo &info) {
    shutdown();
    return info.Env().Undefined();
  }

  Napi::Value Group(const Napi::CallbackInfo &info) { return Napi::String::New(info.Env(), udev_ ? "udev" : "kernel"); }

  void shutdown() {
    if (thread_.joinable()) {
      uint64_t one = 1;
      if (write(wake_, &one, sizeof(one)) < 0) { /* the thread also polls stop_ */ }
      stop_ = true;
      thread_.join();
      tsfn_.Release();
    }
    if (sock_ >= 0) close(sock_);
    if (wake_ >= 0) close(wake_);
    sock_ = wake_ = -1;
  }

  // Accepts a message only from the sender its group implies: the kernel
  // (port 0) for the kernel group, a root process (udevd) for the udev group.
  // Anyone may send to a netlink multicast group otherwise.
  bool trusted(const msghdr &mh, const sockaddr_nl &from) const {
    const ucred *cred = nullptr;
    for (cmsghdr *c = CMSG_FIRSTHDR(const_cast<msghdr *>(&mh)); c; c = CMSG_NXTHDR(const_cast<msghdr *>(&mh), c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
        cred = reinterpret_cast<const ucred *>(CMSG_DATA(c));
    if (!cred || cred->uid != 0) return false;
    return udev_ ? from.nl_pid != 0 : from.nl_pid == 0;
  }

  void run() {
    pthread_setname_np(pthread_self(), "dp-uevent");
    std::vector<uint8_t> buf(64 * 1024);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    while (!stop_) {
      pollfd fds[2] = {{sock_, POLLIN, 0}, {wake_, POLLIN, 0}};
      int n = poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents) break;
      for (;;) {
        sockaddr_nl from{};
        iovec iov{buf.data(), buf.size()};
        msghdr mh{};
        mh.msg_name = &from;
        mh.msg_namelen = sizeof(from);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = control;
        mh.msg_controllen = sizeof(control);
        ssize_t len = recvmsg(sock_, &mh, 0);
        if (len < 0) {
          if (errno == ENOBUFS) {
            // The kernel dropped messages: say so, the detector re-enumerates.
            dropped_++;
            continue;
          }
          break;  // EAGAIN: drained
        }
        if (len == 0 || (mh.msg_flags & MSG_TRUNC) || !trusted(mh, from)) continue;
        push(std::vector<uint8_t>(buf.begin(), buf.begin() + len));
      }
    }
  }

  void push(std::vector<uint8_t> &&bytes) {
    bool wasEmpty;
    {
      std::lock_guard<std::mutex> lk(mu_);
      wasEmpty = queue_.empty();
      if (queue_.size() >= kMaxQueued) {
        queue_.pop_front();
        dropped_++;
      }
      queue_.push_back(Message{std::move(bytes), 0});
    }
    if (wasEmpty) tsfn_.NonBlockingCall(this, [](Napi::Env env, Napi::Function cb, MonitorWrap *self) {
      self->deliver(env, cb);
    });
  }

  void deliver(Napi::Env env, Napi::Function cb) {
    std::deque<Message> batch;
    uint64_t dropped;
    {
      std::lock_guard<std::mutex> lk(mu_);
      batch.swap(queue_);
      dropped = dropped_.exchange(0);
    }
    Napi::Array arr = Napi::Array::New(env, batch.size());
    uint32_t i = 0;
    for (Message &m : batch) arr.Set(i++, Napi::Buffer<uint8_t>::Copy(env, m.bytes.data(), m.bytes.size()));
    cb.Call({arr, Napi::Number::New(env, double(dropped))});
  }

  bool udev_ = false;
  int sock_ = -1;
  int wake_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
  std::mutex mu_;
  std::deque<Message> queue_;
  Napi::ThreadSafeFunction tsfn_;
};

}  // namespace

void InitUevent(Napi::Env env, Napi::Object exports) { exports.Set("UeventMonitor", MonitorWrap::Init(env)); }

}  // namespace devplane
