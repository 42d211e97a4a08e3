// The cheap stop: seccomp user notification for the calls that only need looking at.
//
// A ptrace stop costs two cross-CPU wake-ups (tracee to tracer, tracer to tracee), each an
// interrupt to a halted vCPU on a virtual machine: 50-70 us here. The base filter sends the
// calls of notifiable() (read-only opens, stat, access, readlink, getdents: most of a
// process's stops)
// to a listener instead, answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE. With the
// listener in synchronous wake-up mode (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6) the
// tracee hands its CPU to this thread and gets it back: about 2.5 us per call here
// (bench/stop-roundtrip.c, mode s). PERFORMANCE.md, "User notification".
//
// Ordering: an event is queued before its call is let go, and the tracer thread takes the
// queue before it handles any ptrace stop or exit. So every event of a task reaches JS
// before anything that task did after the call, as with a ptrace stop.
#pragma once

#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "events.h"
#include "path_resolver.h"

namespace pcache {

class Notifier {
 public:
  struct Hooks {
    std::function<pid_t(pid_t tid)> tgidOf;  // any thread
    std::function<void()> wakeTracer;        // the queue grew long: come and take it
  };
  // Takes ownership of the listener fd.
  Notifier(int listener, Hooks hooks);
  ~Notifier();
  // Asks for synchronous wake-ups; false when the kernel cannot (it still works, slower).
  bool setSyncWakeUp();
  void start(int wakeSignal);
  void stop();
  // Moves the queued events, oldest first, to the end of out.
  void take(std::vector<Event>& out);
  bool hasQueued() const { return queued_.load(std::memory_order_acquire) > 0; }
  // The directory tree may have changed (rename, rmdir ...): forget cached path walks.
  void invalidatePaths() { pathGeneration_.fetch_add(1); }
  uint64_t calls() const { return calls_.load(); }
  uint64_t cacheHits() const { return cache_.hits; }      // after stop()
  uint64_t cacheMisses() const { return cache_.misses; }  // after stop()

 private:
  void run();
  void handle(const seccomp_notif& req);

  int listener_;
  Hooks hooks_;
  int wakeSignal_ = 0;
  std::thread thread_;
  std::atomic<pthread_t> handle_{};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
  std::mutex mu_;
  std::vector<Event> queue_;
  std::atomic<size_t> queued_{0};
  bool wakeAsked_ = false;  // under mu_: asked the tracer to take the queue, not taken yet
  std::atomic<uint64_t> pathGeneration_{0};
  uint64_t seenGeneration_ = 0;
  PathCache cache_;
  std::atomic<uint64_t> calls_{0};
};

}  // namespace pcache
