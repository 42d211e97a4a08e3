#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pcache {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kReadAtOnce = 1 << 20;        // per readAvailable
constexpr size_t kWakeAt = 1 << 20;            // captured bytes that make the thread wake the tracer
constexpr size_t kCapturedMax = 8 * (1 << 20);  // past this the thread stops reading (the writer waits)
constexpr long kTickNanos = 1000 * 1000;  // a stream's bytes are taken on this clock (RelayHub::run)
constexpr int64_t kWindowNanos = 100 * 1000 * 1000;
constexpr uint64_t kStreamingBytes = 256 * 1024;  // per window: 2.5 MB/s

int64_t monoNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

RelayHub::Relay::~Relay() {
  for (int fd : {writeFd, readFd, onwardFd})
    if (fd >= 0) close(fd);
  if (thread.joinable()) thread.detach();  // not reached: the hub joins before it lets go
}

RelayHub::RelayHub(std::function<void()> wakeTracer) : wake_(std::move(wakeTracer)) {
  stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

RelayHub::~RelayHub() {
  stopAll();
  if (stopFd_ >= 0) close(stopFd_);
}

std::shared_ptr<RelayHub::Relay> RelayHub::create(pid_t tid, int64_t token, pid_t owner, const std::string& target,
                                                  std::string& why) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    why = std::string("pipe2: ") + strerror(errno);
    return nullptr;
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, tid, 0));
  int onward = pidfd >= 0 ? static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, 1, 0)) : -1;
  if (pidfd >= 0) close(pidfd);
  char link[64], name[128];
  snprintf(link, sizeof link, "/proc/self/fd/%d", p[0]);
  ssize_t n = readlink(link, name, sizeof name);
  if (onward < 0 || n <= 0) {
    why = std::string("pidfd_getfd: ") + strerror(errno);
    close(p[0]);
    close(p[1]);
    if (onward >= 0) close(onward);
    return nullptr;
  }
  // As large as the original: a writer that asks (F_GETPIPE_SZ) is told what it would be
  // told without pcache, and fills as much before it blocks. Where the size cannot be had
  // (the original made larger than this user may make one), no relay: its writes stop.
  int size = fcntl(onward, F_GETPIPE_SZ);
  if (size > 0 && fcntl(p[0], F_GETPIPE_SZ) != size) fcntl(p[0], F_SETPIPE_SZ, size);
  int got = fcntl(p[0], F_GETPIPE_SZ);
  if (size <= 0 || got != size) {
    why = "pipe size: the original holds " + std::to_string(size) + " bytes, a relay pipe " + std::to_string(got);
    close(p[0]);
    close(p[1]);
    close(onward);
    return nullptr;
  }
  auto r = std::make_shared<Relay>();
  r->token = token;
  r->owner = owner;
  r->target = target;
  r->relayName.assign(name, static_cast<size_t>(n));
  r->readFd = p[0];
  r->writeFd = p[1];
  r->onwardFd = onward;
  r->capacity = static_cast<size_t>(size);
  return r;
}

void RelayHub::start(const std::shared_ptr<Relay>& r) {
  if (r->writeFd >= 0) {
    close(r->writeFd);  // the tracee has its own now: EOF comes when its writers are gone
    r->writeFd = -1;
  }
  // The step held the original write end alone (tracer.cc checks), and holds the relay
  // pipe instead now: pcache's duplicate is the description's only holder, so making it
  // non-blocking changes nothing anyone else sees.
  int fl = fcntl(r->onwardFd, F_GETFL);
  if (fl >= 0) fcntl(r->onwardFd, F_SETFL, fl | O_NONBLOCK);
  std::lock_guard<std::mutex> g(mu_);
  relays_.push_back(r);
  Relay* raw = r.get();
  r->thread = std::thread([this, raw] { run(raw); });
}

void RelayHub::cancel(const std::shared_ptr<Relay>& r) {
  for (int* fd : {&r->writeFd, &r->readFd, &r->onwardFd}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

size_t RelayHub::readAvailable(Relay& r, size_t limit) {
  if (r.readFd < 0 || r.eof) return 0;
  char buf[kReadChunk];
  size_t got = 0;
  while (got < limit) {
    ssize_t n = read(r.readFd, buf, sizeof buf);
    if (n > 0) {
      size_t len = static_cast<size_t>(n);
      r.queue.append(buf, len);
      // Room for all the thread gathers before it wakes the tracer, made at once rather than
      // by doubling (each step a copy and page faults on fresh memory); the tracer hands a
      // large capture over and the next one starts afresh.
      if (r.captured.capacity() < kWakeAt) r.captured.reserve(kWakeAt + kReadChunk);
      r.captured.append(buf, len);
      got += len;
    } else if (n == 0) {
      r.eof = true;
      break;
    } else if (errno != EINTR) {
      break;  // EAGAIN: nothing more for now
    }
  }
  return got;
}

bool RelayHub::sleepTick(const Relay& r) {
  // Events 0: not woken by bytes, but at once when the last writer is gone (POLLHUP), so a
  // reader waiting for EOF (`seq 3 | wc -l`) does not wait for the tick.
  timespec tick{0, kTickNanos};
  pollfd p[2] = {{r.readFd, 0, 0}, {stopFd_, POLLIN, 0}};
  return ppoll(p, 2, &tick, nullptr) <= 0 || !p[1].revents;
}

// One thread per relay: a reader that stalls on one pipe must not stall another relay it
// is also waiting on (`paste <(a) <(b)`).
//
// Every write into an empty pipe wakes its reader. A step writing through stdio writes 4 KiB
// at a time into a pipe (`bwa mem`, `bcftools mpileup -Ou`: some 100,000 writes in the
// variant pipeline), and this thread, a reader that keeps up, was woken for nearly each
// one: a wake-up that takes a CPU from a tracee (a reschedule IPI on a VM). Once a wait
// finds bytes, the thread reads on a clock instead (every kTickNanos, the writer filling the
// relay pipe meanwhile), and goes back to waiting for the next write when a tick finds
// nothing. A writer that fills half the relay pipe within a tick is read without waiting.
// Only a stream: a relay that carried kStreamingBytes in the last kWindowNanos or so. A
// request and its answer through the pipe (`coproc bc`, a driver and its tool) would wait
// for a tick at every turn (1,000 turns: 0.2 s -> 1.2 s); their answers are small.
void RelayHub::run(Relay* r) {
  std::string chunk;
  bool ticking = false;
  int64_t windowStart = monoNanos();
  uint64_t curWindow = 0, prevWindow = 0;
  for (;;) {
    bool wait = false, full = false;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (r->broken) break;
      if (!r->queue.empty()) {
        chunk.swap(r->queue);  // all of it: what is read meanwhile goes to the emptied queue
      } else if (r->eof) {
        break;
      } else {
        full = r->captured.size() >= kCapturedMax;
        wait = true;
      }
    }
    if (wait) {
      if (full) {
        wake_();  // and wait for the tracer to take what it holds (the writer waits)
        pollfd p{stopFd_, POLLIN, 0};
        if (poll(&p, 1, 10) < 0 && errno != EINTR) break;
        if (p.revents) break;
        continue;
      }
      if (ticking) {
        ticks_++;
        if (!sleepTick(*r)) break;
      } else {
        pollfd p[2] = {{r->readFd, POLLIN, 0}, {stopFd_, POLLIN, 0}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno != EINTR) break;
        if (p[1].revents) break;
      }
      size_t got;
      bool wakeIt;
      {
        std::lock_guard<std::mutex> g(mu_);
        got = readAvailable(*r, kReadAtOnce);
        reads_++;
        wakeIt = r->captured.size() >= kWakeAt || r->eof;
      }
      if (wakeIt) wake_();
      // Streaming: what this relay carried in this window of kWindowNanos or the one before.
      int64_t now = monoNanos();
      if (now - windowStart >= kWindowNanos) {
        prevWindow = now - windowStart < 2 * kWindowNanos ? curWindow : 0;
        curWindow = 0;
        windowStart = now;
      }
      curWindow += got;
      bool streaming = std::max(prevWindow, curWindow) >= kStreamingBytes;
      ticking = streaming && got > 0 && got < r->capacity / 2;
      continue;
    }
    size_t off = 0;
    bool stop = false;
    while (off < chunk.size()) {
      ssize_t n = write(r->onwardFd, chunk.data() + off, chunk.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EAGAIN) {
        pollfd p[2] = {{r->onwardFd, POLLOUT, 0}, {stopFd_, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) stop = true;
        if (p[1].revents) stop = true;
        if (stop) break;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        // EPIPE: the reader is gone. Closing the relay pipe's read end gives the writer its
        // EPIPE/SIGPIPE at its next write, as the original pipe would have.
        std::lock_guard<std::mutex> g(mu_);
        r->broken = true;
        r->queue.clear();
        if (r->readFd >= 0) close(r->readFd);
        r->readFd = -1;
        stop = true;
        break;
      }
    }
    if (stop) break;
    chunk.clear();
  }
  std::lock_guard<std::mutex> g(mu_);
  if (r->readFd >= 0) close(r->readFd);
  if (r->onwardFd >= 0) close(r->onwardFd);  // the reader sees EOF (it was the last writer)
  r->readFd = r->onwardFd = -1;
  r->eof = true;
}

void RelayHub::drain(bool readPipes, const std::function<void(const Relay&, std::string&)>& fn) {
  std::vector<std::shared_ptr<Relay>> done;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto it = relays_.begin(); it != relays_.end();) {
      Relay& r = **it;
      // At an exit stop everything the process wrote must be reported now: all that is in
      // the pipe (a writer may have made it larger than one read's worth), and no more (a
      // writer that goes on, a child, must not keep the tracer reading its stream).
      if (readPipes && r.readFd >= 0 && !r.eof) {
        int waiting = 0;
        size_t want = ioctl(r.readFd, FIONREAD, &waiting) == 0 ? static_cast<size_t>(waiting) : SIZE_MAX;
        if (want > 0) drainReads_ += readAvailable(r, want);
      }
      if (!r.captured.empty()) {
        fn(r, r.captured);
        r.captured.clear();
      }
      if (r.eof && r.readFd < 0 && r.onwardFd < 0) {
        done.push_back(*it);
        it = relays_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& r : done)
    if (r->thread.joinable()) r->thread.join();
}

size_t RelayHub::active() {
  std::lock_guard<std::mutex> g(mu_);
  return relays_.size();
}

void RelayHub::stopAll() {
  std::vector<std::shared_ptr<Relay>> all;
  {
    std::lock_guard<std::mutex> g(mu_);
    all.swap(relays_);
  }
  if (all.empty()) return;
  uint64_t one = 1;
  if (stopFd_ >= 0 && write(stopFd_, &one, sizeof one) < 0) {
    // a full eventfd is still readable: the threads wake either way
  }
  for (auto& r : all)
    if (r->thread.joinable()) r->thread.join();
  uint64_t drop;
  if (stopFd_ >= 0 && read(stopFd_, &drop, sizeof drop) < 0) {
    // nothing was written
  }
}

}  // namespace pcache
