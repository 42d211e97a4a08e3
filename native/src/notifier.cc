#include "notifier.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "path_event.h"
#include "procfs.h"
#include "seccomp_compat.h"
#include "syscall_table.h"

namespace pcache {

namespace {
// Past this many queued events the tracer thread is woken to take them (it takes them
// anyway before every ptrace stop it handles).
constexpr size_t kWakeAt = 512;
}  // namespace

Notifier::Notifier(int listener, Hooks hooks) : listener_(listener), hooks_(std::move(hooks)) {}

Notifier::~Notifier() {
  stop();
  if (listener_ >= 0) close(listener_);
}

bool Notifier::setSyncWakeUp() {
  return ioctl(listener_, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0) == 0;
}

void Notifier::start(int wakeSignal) {
  wakeSignal_ = wakeSignal;
  running_.store(true);
  thread_ = std::thread([this] { run(); });
  handle_.store(thread_.native_handle());
}

void Notifier::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  // The thread may sit in the RECV ioctl: a signal (no SA_RESTART, tracer.cc) breaks it out.
  // Repeated, for a signal that lands just before it enters the ioctl.
  while (running_.load()) {
    pthread_kill(handle_.load(), wakeSignal_);
    usleep(200);
  }
  thread_.join();
}

void Notifier::take(std::vector<Event>& out) {
  std::lock_guard<std::mutex> g(mu_);
  for (Event& e : queue_) out.push_back(std::move(e));
  queue_.clear();
  queued_.store(0, std::memory_order_release);
  wakeAsked_ = false;
}

void Notifier::run() {
  pthread_setname_np(pthread_self(), "pcache-notify");
  while (!stopping_.load()) {
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
      if (errno == EINTR) continue;  // stop() or a stray wake
      if (errno != ENOENT) break;
      // ENOENT: the caller died while we were waking up, or every task that had the filter
      // is gone (then it says so at once, forever: the listener hangs up).
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)) break;
      continue;
    }
    handle(req);
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    // ENOENT: the caller was killed meanwhile (its event stays: it did ask).
    ioctl(listener_, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
  running_.store(false);
}

void Notifier::handle(const seccomp_notif& req) {
  calls_.fetch_add(1, std::memory_order_relaxed);
  if (req.data.arch != AUDIT_ARCH_X86_64) return;  // the filter never sends these
  const SyscallSpec* s = findSyscall(req.data.nr);
  if (!s || !notifiable(*s)) return;
  pid_t tid = static_cast<pid_t>(req.pid);
  pid_t tgid = hooks_.tgidOf(tid);
  uint64_t a[6];
  for (int i = 0; i < 6; i++) a[i] = req.data.args[i];
  auto generation = [this] {
    uint64_t g = pathGeneration_.load();
    if (g != seenGeneration_) {
      cache_.clear();
      seenGeneration_ = g;
    }
  };
  generation();
  BaseDirFn base = [tid](int64_t dirfd, std::string& out) {
    if (static_cast<int>(dirfd) == AT_FDCWD) return readCwd(tid, out);
    return fdTargetRaw(tid, static_cast<int>(dirfd), out);
  };
  Event e;
  bool ok = buildPathEvent(tid, tgid, *s, a, base, &cache_, e);
  generation();  // a walk that raced a change of the tree leaves nothing cached
  if (!ok) return;
  // Still the same waiting call? A caller killed meanwhile is gone, and its pid may already
  // name another process whose memory and cwd the walk above read: that event is dropped.
  uint64_t id = req.id;
  if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) return;
  bool wake = false;
  {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(std::move(e));
    queued_.store(queue_.size(), std::memory_order_release);
    if (queue_.size() >= kWakeAt && !wakeAsked_) wake = wakeAsked_ = true;
  }
  if (wake) hooks_.wakeTracer();
}

}  // namespace pcache
