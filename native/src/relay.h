// Pipe relays: a step whose stdout is a pipe writes into a pipe of pcache's instead, and a
// thread here copies what arrives on into the original pipe, keeping a copy as the step's
// stdout. Its writes then never stop the tracer (tracer.cc, "stdio write stops"). The
// tracer sets a relay up at the step's exec (the tracee opens the relay pipe through
// /proc/<pcache>/fd and dup2s it onto fd 1) and takes what it read at every exit stop and
// whenever the thread wakes it, so a step's stdout is complete before its exit is reported.
// What a writer can tell: its fd 1 is another pipe (of the original's size), so up to two
// pipes' worth is in flight before it blocks, and a reader's exit reaches it as
// EPIPE/SIGPIPE at a later write than it would have.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pcache {

class RelayHub {
 public:
  struct Relay {
    int64_t token = 0;    // the exec request of the execution whose stdout it carries
    pid_t owner = 0;      // that execution's process
    std::string target;   // the original pipe (what the fold knows as its stdout)
    std::string relayName;  // pipe:[N] of the relay pipe
    int writeFd = -1;     // the relay pipe's write end, open until the tracee has its own
    // Under the hub's lock from start() on:
    int readFd = -1;      // pcache's end of the relay pipe (non-blocking)
    int onwardFd = -1;    // the original pipe's write end (pidfd_getfd)
    std::string queue;    // read, not yet written on
    std::string captured; // read, not yet taken by the tracer
    bool eof = false;     // every writer of the relay pipe is gone
    bool broken = false;  // the original pipe's reader is gone
    size_t capacity = 0;  // the relay pipe's size: the original's (relay.cc)
    std::thread thread;
    ~Relay();  // closes what is still open (a relay dropped before it started)
  };

  explicit RelayHub(std::function<void()> wakeTracer);
  ~RelayHub();

  // Tracer thread. A relay for fd 1 of `tid`, or null (errno-style reason in `why`).
  std::shared_ptr<Relay> create(pid_t tid, int64_t token, pid_t owner, const std::string& target, std::string& why);
  // The tracee's fd 1 is the relay pipe now: start copying.
  void start(const std::shared_ptr<Relay>& r);
  // Never started (the exec was skipped, the tracee could not open it): close it.
  void cancel(const std::shared_ptr<Relay>& r);
  // What every relay has read (readPipes: after reading what waits in its pipe, which an
  // exit stop needs; a relay thread's wake-up does not): fn(relay, bytes) for each relay
  // with bytes. Relays whose copying has ended are let go.
  void drain(bool readPipes, const std::function<void(const Relay&, std::string&)>& fn);
  size_t active();
  uint64_t reads() const { return reads_.load(); }  // how often a relay thread woke to read
  uint64_t drainReads() const { return drainReads_.load(); }  // bytes drain() read from the pipes
  uint64_t ticks() const { return ticks_.load(); }  // reads on the clock (RelayHub::run)
  // Waits for every relay's thread (their writers are gone when the run ends).
  void stopAll();

 private:
  void run(Relay* r);
  size_t readAvailable(Relay& r, size_t limit);  // under mu_; up to `limit` bytes, how many read
  bool sleepTick(const Relay& r);  // false when told to stop meanwhile
  std::function<void()> wake_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Relay>> relays_;
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> drainReads_{0};
  std::atomic<uint64_t> ticks_{0};
  int stopFd_ = -1;  // eventfd: wakes every relay thread to finish at shutdown
};

}  // namespace pcache
