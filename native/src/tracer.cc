#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/mman.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "exec_chain.h"
#include "path_event.h"
#include "path_resolver.h"
#include "procfs.h"
#include "seccomp_filter.h"
#include "syscall_table.h"
#include "tracee_memory.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef __O_TMPFILE
#define __O_TMPFILE 020000000
#endif

namespace pcache {

extern int g_stdioFlags[3];  // addon.cc: fds 0-2 status flags when pcache started
extern int g_stdioOrig[3];   // addon.cc: duplicates of fds 0-2 as pcache received them
extern int g_inheritedFds[];   // addon.cc: fds above 2 pcache was given (close-on-exec since)
extern int g_inheritedFdCount;

namespace {

// Wakes the tracer thread out of waitpid when JS answers or a batch is due.
const int kWakeSignal = SIGRTMIN + 7;
// PTRACE_O_TRACEEXIT is added per task, only where JS asked to hold the exit:
// an exit stop for every task would cost a context switch pair each.
constexpr long kOptions = PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                          PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD;
constexpr size_t kBatchMax = 512;
// A merged stdio write event grows to about this much before a new one starts.
constexpr size_t kMergedWriteMax = 1 << 20;
constexpr long kFlushMicros = 5000;      // events reach JS within this
constexpr long kBackstopMicros = 2000;   // a lost wake costs at most this
// A read-back keeps the file's bytes before its region to compare at the end; a stdout
// file with more than this before the execution's offset is captured write by write.
constexpr int64_t kReadbackPrefixMax = 1 << 20;
// Blocking in waitpid costs a wake-up when the next stop arrives: on a virtual machine
// tens of microseconds (an interrupt to a halted vCPU), paid on every stop of a tracee
// writing its stdout in 4 KiB pieces. So the tracer first polls for kPollMicros; a poll
// that finds nothing turns polling off for the next kPollBackoff waits, which keeps a
// busy machine (where polling would take CPU from tracees) mostly blocking.
constexpr long kPollMicros = 30;
constexpr int kPollBackoff = 16;

void onWake(int) {}

// What the exec filter (setExecFilter) knows an execution by: FNV-1a over the
// executable's resolved path and the argv strings, each followed by a zero byte. Every
// command key covers both, so an exec whose signature no entry has cannot hit.
uint64_t execSignature(const std::string& path, const std::vector<std::string>& argv) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto add = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0) * 0x100000001b3ull;
  };
  add(path);
  for (const std::string& a : argv) add(a);
  return h;
}

uint64_t monotonicMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

double nowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t mtimeNsOf(const struct stat& st) { return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }
int64_t ctimeNsOf(const struct stat& st) { return static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec; }

std::string formatSockaddr(const std::string& raw, int& family) {
  family = 0;
  if (raw.size() < sizeof(sa_family_t)) return "";
  sa_family_t f;
  memcpy(&f, raw.data(), sizeof f);
  family = f;
  char buf[INET6_ADDRSTRLEN + 16];
  if (f == AF_INET && raw.size() >= sizeof(sockaddr_in)) {
    sockaddr_in in;
    memcpy(&in, raw.data(), sizeof in);
    inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(in.sin_port));
  }
  if (f == AF_INET6 && raw.size() >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    memcpy(&in6, raw.data(), sizeof in6);
    inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6.sin6_port));
  }
  if (f == AF_UNIX) {
    const char* p = raw.data() + offsetof(sockaddr_un, sun_path);
    size_t n = raw.size() - offsetof(sockaddr_un, sun_path);
    if (n == 0) return "";
    if (p[0] == 0) return "@" + std::string(p + 1, strnlen(p + 1, n - 1));  // abstract
    return std::string(p, strnlen(p, n));
  }
  return "";
}

}  // namespace

Tracer::Tracer(std::string file, std::vector<std::string> argv, std::vector<std::string> env,
               std::string cwd, Sink sink, std::function<void()> onThreadExit)
    : file_(std::move(file)), argv_(std::move(argv)), env_(std::move(env)), cwd_(std::move(cwd)),
      sink_(std::move(sink)), onThreadExit_(std::move(onThreadExit)) {
  const char* relay = getenv("PCACHE_RELAY");  // JS thread: Node may change the environment there
  relayEnabled_ = !(relay && strcmp(relay, "0") == 0);
  // Synchronous wake-ups (Linux 6.6) are what make a notification cheaper than a ptrace
  // stop; without them it costs about the same, and ptrace alone is the simpler path.
  const char* notify = getenv("PCACHE_NOTIFY");
  struct utsname un;
  int major = 0, minor = 0;
  if (uname(&un) == 0) sscanf(un.release, "%d.%d", &major, &minor);
  notifyWanted_ = !(notify && strcmp(notify, "0") == 0) && (major > 6 || (major == 6 && minor >= 6));
}

Tracer::~Tracer() { join(); }

// JS thread.
void Tracer::start() {
  thread_ = std::thread([this] { threadMain(); });
  // threadStarted_ stays true: a command that ends at once clears threadReady_ again
  // before this loop may ever see it set (seen: `sh -c 'kill -9 $$'` spun here forever).
  while (!threadStarted_.load()) std::this_thread::yield();
}

// JS thread (from the TSFN finalizer, after the tracer thread released it).
void Tracer::join() {
  if (thread_.joinable()) thread_.join();
}

// Any thread.
void Tracer::resolveExec(int64_t token, const ExecDecision& d) {
  {
    std::lock_guard<std::mutex> g(mu_);
    execDecisions_.emplace_back(token, d);
  }
  answersQueued_.store(true);
  if (threadReady_.load()) pthread_kill(threadHandle_.load(), kWakeSignal);
}

void Tracer::setExecFilter(const std::vector<uint64_t>& sigs) {
  std::lock_guard<std::mutex> g(execSigMu_);
  execFilterOn_ = true;
  execSigs_.insert(sigs.begin(), sigs.end());
}

void Tracer::allowExecs(const std::vector<uint64_t>& sigs) {
  std::lock_guard<std::mutex> g(execSigMu_);
  execSigs_.insert(sigs.begin(), sigs.end());
}

void Tracer::resolveExit(int64_t token) {
  {
    std::lock_guard<std::mutex> g(mu_);
    exitDecisions_.push_back(token);
  }
  answersQueued_.store(true);
  if (threadReady_.load()) pthread_kill(threadHandle_.load(), kWakeSignal);
}

void Tracer::resolvePreimage(int64_t token) {
  {
    std::lock_guard<std::mutex> g(mu_);
    preimageDecisions_.push_back(token);
  }
  answersQueued_.store(true);
  if (threadReady_.load()) pthread_kill(threadHandle_.load(), kWakeSignal);
}

void Tracer::signalRoot(int sig) {
  {
    std::lock_guard<std::mutex> g(mu_);
    signals_.push_back(sig);
  }
  answersQueued_.store(true);
  if (threadReady_.load()) pthread_kill(threadHandle_.load(), kWakeSignal);
}

std::map<std::string, uint64_t> Tracer::stats() {
  std::lock_guard<std::mutex> g(statsMu_);
  return stats_;
}

// ---- tracer thread from here on ----

void Tracer::threadMain() {
  // A name for per-thread CPU accounting (PCACHE_TRACER_STATS, perf). The command's
  // process gets its own name from its exec.
  pthread_setname_np(pthread_self(), "pcache-tracer");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onWake;  // no SA_RESTART: waitpid must return EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(kWakeSignal, &sa, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kWakeSignal);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

  sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = kWakeSignal;
  sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  // The first timer of a process has id 0, which is also what a null timer_t looks like:
  // keep "have a timer" apart from its id.
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0) {
    timer_ = timer;
    hasTimer_ = true;
  }

  threadHandle_.store(pthread_self());
  threadReady_.store(true);
  threadStarted_.store(true);

  batch_ = new Batch();
  relayHub_ = std::make_unique<RelayHub>([this] {
    relayWake_.store(true);
    answersQueued_.store(true);
    if (threadReady_.load()) pthread_kill(threadHandle_.load(), kWakeSignal);
  });
  std::string error;
  if (!spawnRoot(error)) {
    if (listenerPipe_ >= 0) close(listenerPipe_);
    listenerPipe_ = -1;
    batch_->done = true;
    batch_->doneNotice.error = error;
    flush();
  } else {
    loop();
    if (notifier_) {
      notifier_->stop();
      drainNotified();
      localStats_["stops_notify"] = notifier_->calls();
      localStats_["notify_cache_hits"] = notifier_->cacheHits();
      localStats_["notify_cache_misses"] = notifier_->cacheMisses();
    }
    if (listenerPipe_ >= 0) close(listenerPipe_);
    listenerPipe_ = -1;
    drainRelays();
    relayHub_->stopAll();  // their writers are gone: each ends at EOF
    drainRelays();
    if (relayHub_->reads()) localStats_["relay_reads"] = relayHub_->reads();
    if (relayHub_->drainReads()) localStats_["relay_bytes_read_at_exits"] = relayHub_->drainReads();
    if (relayHub_->ticks()) localStats_["relay_ticks"] = relayHub_->ticks();
    batch_->done = true;
    DoneNotice& d = batch_->doneNotice;
    if (!fatalError_.empty()) d.error = fatalError_;
    if (WIFEXITED(rootStatus_)) {
      d.hasCode = true;
      d.code = WEXITSTATUS(rootStatus_);
    } else if (WIFSIGNALED(rootStatus_)) {
      d.hasSignal = true;
      d.signal = WTERMSIG(rootStatus_);
    }
    localStats_["path_cache_hits"] = pathCache_.hits;
    localStats_["path_cache_misses"] = pathCache_.misses;
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
      localStats_["tracer_cpu_us"] = ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec +
                                     ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
    }
    {
      std::lock_guard<std::mutex> g(statsMu_);
      stats_ = localStats_;
    }
    flush();
  }
  notifier_.reset();
  delete batch_;
  batch_ = nullptr;
  relayHub_.reset();
  if (hasTimer_) timer_delete(static_cast<timer_t>(timer_));
  hasTimer_ = false;
  threadReady_.store(false);
  if (onThreadExit_) onThreadExit_();
}

bool Tracer::spawnRoot(std::string& error) {
  // Everything the child needs is built here: after fork() in a multithreaded
  // process the child may only make async-signal-safe calls.
  std::vector<char*> argv, envp;
  for (auto& s : argv_) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (auto& s : env_) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  std::vector<sock_filter> filter = buildSeccompFilter(false);
  sock_fprog prog{static_cast<unsigned short>(filter.size()), filter.data()};
  std::vector<sock_filter> notifyFilter = buildSeccompFilter(true);
  sock_fprog notifyProg{static_cast<unsigned short>(notifyFilter.size()), notifyFilter.data()};
  // What pcache itself may write to (its own messages, a summary): never read back as a
  // tracee's output.
  for (int fd = 1; fd <= 2; fd++) {
    for (int f : {fd, g_stdioOrig[fd]}) {
      struct stat st;
      if (f >= 0 && fstat(f, &st) == 0) {
        ownStdio_.insert({st.st_dev, st.st_ino});
        (fd == 1 ? ownStdout_ : ownStderr_) = {st.st_dev, st.st_ino};
      }
    }
  }
  const char* file = file_.c_str();
  const char* cwd = cwd_.empty() ? nullptr : cwd_.c_str();
  const int* stdioFlags = g_stdioFlags;
  const int* stdioOrig = g_stdioOrig;
  int listenerPipe[2] = {-1, -1};
  if (notifyWanted_ && pipe2(listenerPipe, O_CLOEXEC) != 0) {
    error = std::string("pipe failed: ") + strerror(errno);
    return false;
  }
  const bool notify = notifyWanted_;

  pid_t pid = fork();
  if (pid < 0) {
    if (notify) {
      close(listenerPipe[0]);
      close(listenerPipe[1]);
    }
    error = std::string("fork failed: ") + strerror(errno);
    return false;
  }
  if (pid == 0) {
    // Node ignores SIGPIPE and may block signals; a plain run would not.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Node marks its stdio close-on-exec and non-blocking; the command must inherit it as a
    // shell would pass it.
    for (int fd = 0; fd <= 2; fd++) {
      if (stdioOrig[fd] >= 0) dup2(stdioOrig[fd], fd);  // the caller's description, not Node's reopened one
      fcntl(fd, F_SETFD, 0);
      if (stdioFlags[fd] >= 0) fcntl(fd, F_SETFL, stdioFlags[fd]);
    }
    for (int i = 0; i < g_inheritedFdCount; i++) fcntl(g_inheritedFds[i], F_SETFD, 0);
    if (cwd && chdir(cwd) != 0) _exit(126);
    kill(getpid(), SIGSTOP);  // wait here until the tracer has seized us
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(126);
    // The listener is close-on-exec: the tracer copies it (pidfd_getfd) at our execve's
    // stop, before the exec closes it. Where there can be none (pcache run under a filter
    // that has one: EBUSY), every call stops for ptrace as before, and -1 says so.
    long listener = notify ? syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                     &notifyProg)
                           : -1;
    if (listener < 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) _exit(126);
    if (notify) {
      int n = static_cast<int>(listener);
      if (write(listenerPipe[1], &n, sizeof n) != sizeof n) _exit(126);
    }
    execve(file, argv.data(), envp.data());
    _exit(127);
  }
  if (notify) {
    close(listenerPipe[1]);
    fcntl(listenerPipe[0], F_SETFL, O_NONBLOCK);
    listenerPipe_ = listenerPipe[0];
  }
  int status;
  if (waitpid(pid, &status, WUNTRACED | __WALL) != pid || !WIFSTOPPED(status)) {
    error = "the command's process did not start";
    return false;
  }
  if (ptrace(PTRACE_SEIZE, pid, 0, kOptions) != 0) {
    error = std::string("ptrace(PTRACE_SEIZE) failed: ") + strerror(errno);
    kill(pid, SIGKILL);
    waitpid(pid, &status, __WALL);
    return false;
  }
  root_ = pid;
  noteTask(pid, pid);
  int um = readUmask(getpid());
  processes_[pid].umask = um >= 0 ? um : 022;
  Task& t = tasks_[pid];
  t.tid = pid;
  t.tgid = pid;
  t.awaitingInitialStop = true;  // the group-stop it was seized in
  processes_[pid].tasks.insert(pid);
  kill(pid, SIGCONT);
  return true;
}

void Tracer::armTimer(long micros) {
  if (!hasTimer_) return;
  uint64_t now = monotonicMicros();
  if (micros > 0 && timerArmed_) {
    // Already armed: keep it when its next expiry comes soon enough. Re-arming on every
    // wait was one timer_settime per stop in a burst of stdio stops.
    uint64_t next = timerDue_;
    if (next < now) next += ((now - next) / kBackstopMicros + 1) * kBackstopMicros;
    if (next <= now + static_cast<uint64_t>(micros)) {
      localStats_["timer_kept"]++;
      return;
    }
  }
  itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = micros / 1000000;
  its.it_value.tv_nsec = (micros % 1000000) * 1000;
  // Periodic, not one-shot: an expiry that lands between arming and waitpid (the
  // thread preempted there) runs the handler outside the wait and is lost; the next
  // one, kBackstopMicros later, interrupts the wait.
  its.it_interval.tv_nsec = micros > 0 ? kBackstopMicros * 1000 : 0;
  timer_settime(static_cast<timer_t>(timer_), 0, &its, nullptr);
  timerArmed_ = micros > 0;
  timerDue_ = now + static_cast<uint64_t>(micros);
  localStats_["timer_arms"]++;
}

pid_t Tracer::pollBriefly(int* status) {
  if (pollBackoff_ > 0) {
    pollBackoff_--;
    return 0;
  }
  uint64_t until = monotonicMicros() + kPollMicros;
  while (monotonicMicros() < until && !answersQueued_.load()) {
    __builtin_ia32_pause();
    pid_t tid = waitpid(-1, status, __WALL | __WNOTHREAD | WNOHANG);
    if (tid != 0) return tid;
  }
  pollBackoff_ = kPollBackoff;
  localStats_["poll_misses"]++;
  return 0;
}

void Tracer::loop() {
  while (!tasks_.empty() || !unannounced_.empty()) {
    drainDecisions();
    drainNotified();
    int status;
    pid_t tid = waitpid(-1, &status, __WALL | __WNOTHREAD | WNOHANG);
    if (tid == 0) tid = pollBriefly(&status);
    if (tid == 0 && answersQueued_.load()) continue;
    if (tid == 0) {
      // Nothing ready: JS hears about pending events within kFlushMicros, and an
      // answer whose wake-up signal raced with this wait is picked up within
      // kBackstopMicros (the timer repeats until disarmed, so an expiry that
      // landed outside waitpid is followed by one that lands inside).
      if (!batch_->events.empty() || !batch_->execNotices.empty()) {
        long waited = static_cast<long>(monotonicMicros() - batchStart_);
        if (waited >= kFlushMicros) {
          flush();
          continue;
        }
        armTimer(std::min(kFlushMicros - waited, tokens_.empty() ? kFlushMicros : kBackstopMicros));
      } else if (!tokens_.empty()) {
        armTimer(kBackstopMicros);
      } else if (timerArmed_) {
        armTimer(0);
      }
      tid = waitpid(-1, &status, __WALL | __WNOTHREAD);
      if (tid < 0 && errno == EINTR) continue;
    }
    if (tid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: nothing left to wait for
    }
    uint64_t h0 = monotonicMicros();
    busyKind_ = "busy_us_other";
    handleStatus(tid, status);
    uint64_t busy = monotonicMicros() - h0;
    localStats_["tracer_busy_us"] += busy;
    localStats_[busyKind_] += busy;  // by the kind of stop it was (the handlers set it)
    if (batch_->events.size() >= kBatchMax) flush();
  }
  if (timerArmed_) armTimer(0);
  if (!batch_->events.empty() || !batch_->execNotices.empty()) flush();
}

Event& Tracer::emit(EventKind k, pid_t pid) {
  if (batch_->events.empty()) batchStart_ = monotonicMicros();
  batch_->events.emplace_back();
  Event& e = batch_->events.back();
  e.kind = k;
  e.pid = pid;
  return e;
}

void Tracer::flush() {
  Batch* b = batch_;
  batch_ = new Batch();
  batchSeq_++;
  if (timerArmed_) armTimer(0);
  localStats_["batches"]++;
  sink_(b);
}

void Tracer::resume(Task& t, int sig) {
  long req = t.wantExitStop ? PTRACE_SYSCALL : PTRACE_CONT;
  ptrace(static_cast<__ptrace_request>(req), t.tid, 0, sig);
}

void Tracer::drainDecisions() {
  if (relayWake_.exchange(false)) drainRelays(false);
  std::vector<std::pair<int64_t, ExecDecision>> execs;
  std::vector<int64_t> exits;
  std::vector<int> sigs;
  {
    std::lock_guard<std::mutex> g(mu_);
    answersQueued_.store(false);
    execs.swap(execDecisions_);
    exits.swap(exitDecisions_);
    for (int64_t tk : preimageDecisions_) exits.push_back(tk);  // same release: resume the task
    preimageDecisions_.clear();
    sigs.swap(signals_);
  }
  for (auto& [token, d] : execs) {
    auto it = tokens_.find(token);
    if (it == tokens_.end()) continue;  // the tracee died meanwhile
    pid_t tid = it->second;
    tokens_.erase(it);
    auto ti = tasks_.find(tid);
    if (ti == tasks_.end()) continue;
    Task& t = ti->second;
    if (t.pending != Task::Pending::ExecDecision || t.token != token) continue;
    if (d.skip) {
      // Swap the execve for exit_group(status): the parent sees an ordinary exit.
      user_regs_struct regs;
      ptrace(PTRACE_GETREGS, tid, 0, &regs);
      regs.orig_rax = __NR_exit_group;
      regs.rdi = static_cast<uint64_t>(d.exitCode & 0xff);
      ptrace(PTRACE_SETREGS, tid, 0, &regs);
      t.pending = Task::Pending::None;
      t.wantExitStop = false;
      t.injectFds = 0;
      dropReadbacks(processes_[t.tgid], token);
      if (t.relay) {
        relayHub_->cancel(t.relay);
        t.relay.reset();
      }
      localStats_["exec_skipped"]++;
    } else {
      t.pending = Task::Pending::ExecRunning;
      t.pendingHoldExit = d.holdExit;
      // Children forked later inherit these options with the task. A read-back needs the
      // exit stop: the file is read before anyone sees the process gone.
      bool readback = !processes_[t.tgid].readbacks.empty() || t.relay;
      ptrace(PTRACE_SETOPTIONS, tid, 0, kOptions | (d.holdExit || readback ? PTRACE_O_TRACEEXIT : 0));
      t.wantExitStop = false;  // a failure shows as the task's next stop not being EVENT_EXEC
      unsigned fds = t.injectFds;
      t.injectFds = 0;
      if (fds && injectStdioStops(t, fds, Task::Pending::ExecRunning)) continue;  // a relay follows
      if (t.relay) {
        startRelay(t);
        continue;
      }
    }
    resume(t);
  }
  for (int64_t token : exits) {
    auto it = tokens_.find(token);
    if (it == tokens_.end()) continue;
    pid_t tid = it->second;
    tokens_.erase(it);
    auto ti = tasks_.find(tid);
    if (ti == tasks_.end()) continue;
    Task& rt = ti->second;
    rt.pending = rt.treeChangeExit ? Task::Pending::TreeChangeExit : Task::Pending::None;
    rt.wantExitStop = rt.treeChangeExit;
    resume(rt);
  }
  for (int sig : sigs) {
    if (root_ > 0 && !rootReaped_) kill(root_, sig);
  }
}

void Tracer::noteTask(pid_t tid, pid_t tgid) {
  std::lock_guard<std::mutex> g(tgidMu_);
  tgidOf_[tid] = tgid;
}

void Tracer::forgetTask(pid_t tid) {
  std::lock_guard<std::mutex> g(tgidMu_);
  tgidOf_.erase(tid);
}

// Notifier thread.
pid_t Tracer::tgidOf(pid_t tid) {
  {
    std::lock_guard<std::mutex> g(tgidMu_);
    auto it = tgidOf_.find(tid);
    if (it != tgidOf_.end()) return it->second;
  }
  return tid;  // not seen yet (cannot happen: a task runs only once it is known)
}

void Tracer::clearPathCaches() {
  pathCache_.clear();
  if (notifier_) notifier_->invalidatePaths();
}

void Tracer::acquireListener() {
  int n = -1;
  ssize_t got = read(listenerPipe_, &n, sizeof n);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;  // not installed yet
  close(listenerPipe_);
  listenerPipe_ = -1;
  if (got != sizeof n) return;  // the child failed before its filter went in (exit 126)
  if (n < 0) {
    localStats_["notify_unavailable"] = 1;  // it runs with ptrace stops only
    return;
  }
  int listener = -1;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, root_, 0));
  if (pidfd >= 0) {
    listener = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, n, 0));
    close(pidfd);
  }
  if (listener < 0) {
    // Without a listener every notified call would fail (ENOSYS): the command cannot run.
    fatalError_ = std::string("cannot receive the seccomp listener: ") + strerror(errno) +
                  " (PCACHE_NOTIFY=0 runs without it)";
    kill(root_, SIGKILL);
    return;
  }
  Notifier::Hooks hooks;
  hooks.tgidOf = [this](pid_t tid) { return tgidOf(tid); };
  hooks.wakeTracer = [this] {
    answersQueued_.store(true);
    if (threadReady_.load()) pthread_kill(threadHandle_.load(), kWakeSignal);
  };
  notifier_ = std::make_unique<Notifier>(listener, std::move(hooks));
  localStats_["notify_sync"] = notifier_->setSyncWakeUp() ? 1 : 0;
  notifier_->start(kWakeSignal);
}

// Events the notifier queued go into the batch before anything the tracer sees next.
void Tracer::drainNotified() {
  if (!notifier_ || !notifier_->hasQueued()) return;
  notified_.clear();
  notifier_->take(notified_);
  if (notified_.empty()) return;
  if (batch_->events.empty()) batchStart_ = monotonicMicros();
  for (Event& e : notified_) {
    noteRead(e);
    batch_->events.push_back(std::move(e));
  }
  if (batch_->events.size() >= kBatchMax) flush();
}

void Tracer::handleStatus(pid_t tid, int status) {
  if (listenerPipe_ >= 0) acquireListener();
  drainNotified();
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    handleTaskGone(tid, status);
    return;
  }
  if (!WIFSTOPPED(status)) return;
  auto it = tasks_.find(tid);
  if (it == tasks_.end()) {
    // A new child reporting before its parent's fork event: hold it until we
    // know whose it is, so its events are never attributed to nobody.
    unannounced_[tid] = status;
    localStats_["stops_early_child"]++;
    return;
  }
  Task& t = it->second;
  int sig = WSTOPSIG(status);
  int event = (status >> 16) & 0xff;
  if (t.pending == Task::Pending::ExecRunning && event != PTRACE_EVENT_EXEC) noteExecFailed(t);
  if (sig == (SIGTRAP | 0x80)) {
    localStats_["stops_syscall_exit"]++;
    busyKind_ = "busy_us_syscall_exit";
    handleSyscallExit(t);
    return;
  }
  if (event != 0) {
    handleEventStop(t, event, status);
    return;
  }
  // Signal-delivery-stop: pass the signal on untouched.
  localStats_["stops_signal"]++;
  busyKind_ = "busy_us_signal";
  if (t.writeInFlight) checkWriteInFlight(t);
  resume(t, sig);
}

// A signal is delivered on the way out of the call it interrupted. Delivered on the
// write's own way out with a return other than the whole count (a partial write, an
// error, a restart that will write again and be captured again), the bytes captured at
// entry are not what went out: the event is cut to what was written while it is still in
// the unsent batch, else the stream is reported as not captured. Delivered later (in user
// space, or in another call), the write had completed.
void Tracer::checkWriteInFlight(Task& t) {
  t.writeInFlight = false;
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, t.tid, 0, &regs) != 0) return;
  // Only that same call: the task may have made other, untraced calls since (a write to
  // another fd has the same number). The kernel keeps the argument registers across a
  // call, and a later write to fd 1/2 would have stopped at its entry.
  if (static_cast<int64_t>(regs.orig_rax) != t.ioNr || static_cast<int64_t>(regs.rdi) != t.ioFd ||
      regs.rsi != t.ioArg1)
    return;
  int64_t written = static_cast<int64_t>(regs.rax);
  if (written == t.writeCount) return;
  if (t.writeBatchSeq == batchSeq_ && t.writeEventIndex < batch_->events.size()) {
    Event& w = batch_->events[t.writeEventIndex];
    size_t keep = t.writeDataStart + (written > 0 ? static_cast<size_t>(written) : 0);
    if (w.data.size() > keep) w.data.resize(keep);
    w.count = static_cast<int64_t>(w.data.size());
    return;
  }
  Event& e = emit(EventKind::Io, t.tid);
  e.fd = t.ioFd;
  e.dir = 'w';
  e.target = t.writeTarget;
  e.fdKind = classifyTarget(e.target);
  e.uncapturable = true;
  e.syscall = syscallName(t.ioNr);
}

void Tracer::handleEventStop(Task& t, int event, int status) {
  t.writeInFlight = false;  // any other stop comes after the write returned
  switch (event) {
    case PTRACE_EVENT_SECCOMP:
      localStats_["stops_seccomp"]++;
      busyKind_ = "busy_us_seccomp";
      handleSeccompStop(t);
      return;
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
    case PTRACE_EVENT_CLONE:
      localStats_["stops_spawn"]++;
      busyKind_ = "busy_us_spawn";
      handleNewTask(t, event);
      return;
    case PTRACE_EVENT_EXEC: {
      localStats_["stops_exec"]++;
      busyKind_ = "busy_us_exec";
      unsigned long former = 0;
      ptrace(PTRACE_GETEVENTMSG, t.tid, 0, &former);
      pid_t pid = t.tid;
      pid_t formerTid = static_cast<pid_t>(former);
      Task* task = &t;
      if (formerTid != pid && formerTid != 0) {
        // A non-leader thread exec'd: it now carries the leader's tid and
        // the old leader is gone without an exit report.
        auto fi = tasks_.find(formerTid);
        if (fi != tasks_.end()) {
          Task moved = fi->second;
          tasks_.erase(fi);
          processes_[t.tgid].tasks.erase(formerTid);
          moved.tid = pid;
          forgetTask(formerTid);
          noteTask(pid, moved.tgid);
          tasks_[pid] = moved;
          task = &tasks_[pid];
        }
      }
      // Every other thread died in the exec.
      Process& proc = processes_[task->tgid];
      for (pid_t other : std::set<pid_t>(proc.tasks)) {
        if (other != pid) {
          proc.tasks.erase(other);
        }
      }
      proc.tasks.insert(pid);
      proc.stdinReported.clear();  // a new execution: its first stdin read is news again
      Event& e = emit(EventKind::Exec, pid);
      e.formerTid = formerTid ? formerTid : pid;
      if (task->pending == Task::Pending::ExecRunning) {
        e.token = task->token;
        proc.holdExit = task->pendingHoldExit;
      } else {
        // An exec we predicted would fail: nobody decided about it.
        e.token = 0;
        proc.holdExit = false;
        emitUnknown(*task, __NR_execve, "execve", "an exec expected to fail succeeded");
      }
      e.fds = fdSnapshot(pid);
      proc.execFiles.clear();
      proc.execTargets.clear();
      for (const FdSnapshot& f : e.fds) {
        if (f.fd > 2 && strcmp(f.kind, "file") == 0) proc.execFiles[f.fd] = f.target;
        proc.execTargets.insert(f.target);
      }
      if (proc.relayFailedToken) {
        std::string target;
        fdTarget(pid, 1, target);
        emitReadbackIo(pid, 1, std::move(target), "pipe", "relay", proc.relayFailedToken).uncapturable = true;
        proc.relayFailedToken = 0;
      }
      if (task->pending == Task::Pending::ExecRunning && proc.judgeStdin) {
        std::string target;
        if (fdTarget(pid, 0, target) && target != "/dev/null") {
          proc.stdinReported = target;
          emitStdinRead(pid, std::move(target), "exec");
          localStats_["stdin_judged_at_exec"]++;
        }
      }
      proc.judgeStdin = false;
      task->pending = Task::Pending::None;
      task->wantExitStop = false;
      if (proc.uncapturedFds) markUncaptured(*task, proc.uncapturedFds, true);
      resume(*task);
      return;
    }
    case PTRACE_EVENT_EXIT: {
      localStats_["stops_exit"]++;
      busyKind_ = "busy_us_exit";
      // Whatever it wrote into a relay is in the relay pipe now: reported before its exit.
      if (relayHub_->active()) drainRelays();
      Process& proc = processes_[t.tgid];
      t.exiting = true;
      unsigned long msg = 0;
      ptrace(PTRACE_GETEVENTMSG, t.tid, 0, &msg);
      int st = static_cast<int>(msg);
      if (!proc.exitHeld && isProcessExit(t, proc, st)) {
        proc.exitHeld = true;
        if (!proc.readbacks.empty()) emitReadbacks(t.tgid, proc);
        if (proc.holdExit) holdExit(t, st);
        if (t.pending == Task::Pending::ExitHold) return;  // until JS calls resolveExit
      }
      t.wantExitStop = false;
      resume(t);
      return;
    }
    case PTRACE_EVENT_STOP: {
      localStats_["stops_group"]++;
      busyKind_ = "busy_us_group";
      int sig = WSTOPSIG(status);
      if (t.awaitingInitialStop) {
        t.awaitingInitialStop = false;
        resume(t);
        return;
      }
      if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
        ptrace(PTRACE_LISTEN, t.tid, 0, 0);  // a real group-stop: stay stopped
        return;
      }
      resume(t);
      return;
    }
    default:
      resume(t);
  }
}

// At a task's exit stop: is the process ending with it? It is when every other task is
// already past its own exit stop (a leader that left by pthread_exit waits as a zombie for
// the last thread), and also when this task ends the whole group: exit_group(2) or a fatal
// signal kill the other threads, which on current kernels die without an exit stop of
// their own. (A multi-threaded program that returns from main with a thread still running
// was not held before, and its caller could change its outputs before they were stored.)
bool Tracer::isProcessExit(Task& t, Process& proc, int status) {
  bool others = false;
  for (pid_t other : proc.tasks) {
    if (other == t.tid) continue;
    auto it = tasks_.find(other);
    if (it != tasks_.end() && !it->second.exiting) {
      others = true;
      break;
    }
  }
  if (!others || WIFSIGNALED(status)) return true;
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, t.tid, 0, &regs) != 0) return false;
  return regs.orig_rax == __NR_exit_group;
}

// A write stop of a process whose fd is read back (planStdio): its bytes land in the region,
// which is all a filter-less process would give too.
bool Tracer::passesWrite(Task& t, int fd, const std::string& target) {
  const Process& proc = processes_[t.tgid];
  return fd == 1 && proc.passToken != 0 && target == proc.passTarget && liveReadbacks_.count(proc.passToken) > 0;
}

// Keeps the task stopped for JS under a new token; the request goes out in a batch of its
// own, after every event before it.
int64_t Tracer::holdTask(Task& t, Task::Pending why) {
  flush();
  int64_t token = nextToken_++;
  tokens_[token] = t.tid;
  t.pending = why;
  t.token = token;
  return token;
}

// Reports the process's last exit to JS and keeps the task stopped until resolveExit.
void Tracer::holdExit(Task& t, int status) {
  int64_t token = holdTask(t, Task::Pending::ExitHold);
  batch_->hasExit = true;
  ExitRequest& r = batch_->exit;
  r.token = token;
  r.pid = t.tgid;
  r.tid = t.tid;
  r.hasCode = WIFEXITED(status);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  r.hasSignal = WIFSIGNALED(status);
  r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  flush();
}

void Tracer::handleNewTask(Task& parentRef, int event) {
  // Copy what we need: inserting the child may rehash tasks_.
  struct { pid_t tid, tgid; } parent{parentRef.tid, parentRef.tgid};
  unsigned long msg = 0;
  ptrace(PTRACE_GETEVENTMSG, parent.tid, 0, &msg);
  pid_t child = static_cast<pid_t>(msg);
  bool thread = false;
  if (event == PTRACE_EVENT_CLONE) {
    user_regs_struct regs;
    ptrace(PTRACE_GETREGS, parent.tid, 0, &regs);
    uint64_t flags = regs.rdi;
    if (regs.orig_rax == __NR_clone3) {
      uint64_t f = 0;
      readBytes(parent.tid, regs.rdi, &f, sizeof f);
      flags = f;
    }
    thread = (flags & CLONE_THREAD) != 0;
  }
  Task& c = tasks_[child];
  c.tid = child;
  c.tgid = thread ? parent.tgid : child;
  noteTask(child, c.tgid);
  if (!thread) {
    Process& from = processes_[parent.tgid];
    Process& to = processes_[child];
    to.umask = from.umask;
    to.cwd = from.cwd;
    to.cwdValid = from.cwdValid;
    to.stdioStops = from.stdioStops;
    to.passToken = from.passToken;
    to.passTarget = from.passTarget;
    to.uncapturedFds = from.uncapturedFds;
    to.execFiles = from.execFiles;
    to.execTargets = from.execTargets;
    // A holder of a read-back file forked: the child's writes would not show in its count.
    for (auto& [pid, proc] : processes_)
      for (Readback& r : proc.readbacks)
        for (const auto& h : r.holders)
          if (h.first == parent.tgid) r.tainted = true;
  }
  processes_[c.tgid].tasks.insert(child);
  Event& e = emit(EventKind::Spawn, child);
  e.parent = parent.tid;
  e.thread = thread;
  e.tgid = c.tgid;
  auto early = unannounced_.find(child);
  if (early != unannounced_.end()) {
    int st = early->second;
    unannounced_.erase(early);
    if (WIFSTOPPED(st) && ((st >> 16) & 0xff) == PTRACE_EVENT_STOP) {
      resume(c);
    } else {
      c.awaitingInitialStop = false;
      handleStatus(child, st);
    }
  } else {
    c.awaitingInitialStop = true;
  }
  resume(tasks_[parent.tid]);
}

void Tracer::handleTaskGone(pid_t tid, int status) {
  if (tid == root_) {
    rootStatus_ = status;
    rootReaped_ = true;
  }
  auto it = tasks_.find(tid);
  if (it == tasks_.end()) {
    // Died before its parent's fork event was seen: announce it with that event.
    unannounced_[tid] = status;
    return;
  }
  Task& t = it->second;
  if (t.pending == Task::Pending::ExecRunning) noteExecFailed(t);
  if (t.copySrcFd >= 0) close(t.copySrcFd);
  if (t.pending == Task::Pending::ExecDecision || t.pending == Task::Pending::ExitHold ||
      t.pending == Task::Pending::Preimage)
    tokens_.erase(t.token);
  pid_t tgid = t.tgid;
  tasks_.erase(it);
  forgetTask(tid);
  Process& proc = processes_[tgid];
  proc.tasks.erase(tid);
  // No exit stop came (killed): read back what is there, late.
  if (proc.tasks.empty() && !proc.readbacks.empty()) emitReadbacks(tgid, proc);
  Event& e = emit(EventKind::Exit, tid);
  e.tgid = tgid;
  e.processExit = proc.tasks.empty();
  e.hasCode = WIFEXITED(status);
  e.code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  e.hasSignal = WIFSIGNALED(status);
  e.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  e.time = nowMs();
  if (proc.tasks.empty()) processes_.erase(tgid);
}

bool Tracer::cwdOf(Task& t, std::string& out) {
  Process& proc = processes_[t.tgid];
  if (!proc.cwdValid) {
    if (!readCwd(t.tid, proc.cwd)) return false;
    proc.cwdValid = true;
  }
  out = proc.cwd;
  return true;
}

void Tracer::noteExecFailed(Task& t) {
  dropReadbacks(processes_[t.tgid], t.token);
  // The exec JS let run never reached PTRACE_EVENT_EXEC: it failed (bad
  // interpreter, ENOEXEC ...), and this is the task's first stop after it.
  Event& e = emit(EventKind::Fs, t.tid);
  e.op = "execve-probe";
  e.hasResult = true;
  e.result = -ENOEXEC;
  e.token = t.token;
  t.pending = Task::Pending::None;
}

bool Tracer::baseDir(Task& t, int64_t dirfd, std::string& out) {
  if (static_cast<int>(dirfd) == AT_FDCWD) return cwdOf(t, out);
  return fdTarget(t.tid, static_cast<int>(dirfd), out);
}

void Tracer::emitUnknown(Task& t, int nr, const char* name, const std::string& detail) {
  Event& e = emit(EventKind::Unknown, t.tid);
  e.nr = nr;
  e.syscall = name;
  e.detail = detail;
}

void Tracer::handleSeccompStop(Task& t) {
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, t.tid, 0, &regs) != 0) return;  // died under us
  int nr = static_cast<int>(regs.orig_rax);
  uint64_t a[6] = {regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9};
  t.wantExitStop = false;
  // A 32-bit or x32 syscall: we cannot decode it.
  if (regs.cs == 0x23 || (nr & 0x40000000)) {
    emitUnknown(t, nr, "?", "a 32-bit or x32 system call");
    resume(t);
    return;
  }
  if (t.pending == Task::Pending::RelayDupEntry && nr == __NR_dup2) {
    t.pending = Task::Pending::RelayDupExit;  // ours (startRelay): its result at its exit
    t.wantExitStop = true;
    resume(t);
    return;
  }
  if (t.reissue && nr == t.reissueNr) {
    // The call a seccomp(2) or a relay's calls were swapped in for, issued again: already
    // handled (a relay still to set up goes first).
    t.reissue = false;
    t.pending = t.afterReissue;
    t.afterReissue = Task::Pending::None;
    if (t.relay && t.pending == Task::Pending::ExecRunning) {
      startRelay(t);
      return;
    }
    resume(t);
    return;
  }
  const SyscallSpec* s = findSyscall(nr);
  if (!s) {
    emitUnknown(t, nr, "?", "system call " + std::to_string(nr) + " is newer than this tracer");
    resume(t);
    return;
  }
  switch (s->handling) {
    case Handling::PathOp:
    case Handling::Open:
    case Handling::Openat2:
    case Handling::Symlink:
    {
      size_t before = batch_->events.size();
      handlePathOp(t, *s, a);
      // Renaming or removing a directory or a symlink changes what the path cache holds:
      // forget it now, and again once the call is done (another tracee may walk in between).
      if (batch_->events.size() > before || t.pending == Task::Pending::Preimage) {
        const Event& e = t.pending == Task::Pending::Preimage ? lastFsEvent_ : batch_->events.back();
        std::string op = e.op;
        bool tree = (op == "rmdir") || (op == "unlink" && e.type == 'l') ||
                    (op == "rename" && (e.type == 'd' || e.type == 'l' || e.type2 == 'd' || e.type2 == 'l'));
        if (tree) {
          clearPathCaches();
          t.treeChangeExit = true;
          t.wantExitStop = true;
          if (t.pending == Task::Pending::None) t.pending = Task::Pending::TreeChangeExit;
        }
      }
      if (t.pending == Task::Pending::Preimage) return;  // held until JS has read the old state
      if (s->nr == __NR_chdir || s->nr == __NR_fchdir) {
        t.pending = Task::Pending::ChdirExit;  // the cached cwd is stale once it completes
        t.wantExitStop = true;
      }
      break;
    }
    case Handling::Exec:
      handleExecEntry(t, *s, a);
      return;  // resumes itself (or waits for JS)
    case Handling::Socket: {
      Event& e = emit(EventKind::Net, t.tid);
      e.netOp = "socket";
      e.family = static_cast<int>(a[0]);
      e.socktype = static_cast<int>(a[1]);
      break;
    }
    case Handling::SockAddr:
    case Handling::SendMsg:
      handleSockAddr(t, *s, a);
      break;
    case Handling::Random: {
      // Random bytes are what reading /dev/urandom gives: report it as that read.
      Event& e = emit(EventKind::Fs, t.tid);
      e.op = "open";
      e.path = "/dev/urandom";
      e.type = 'c';
      e.flags = O_RDONLY;
      break;
    }
    case Handling::Umask:
      processes_[t.tgid].umask = static_cast<int>(a[0] & 0777);
      break;
    case Handling::Listen: {
      Event& e = emit(EventKind::Net, t.tid);
      e.netOp = "listen";
      break;
    }
    case Handling::ReadStdin: {
      if (nr == __NR_mmap && (a[3] & MAP_ANONYMOUS)) break;  // the fd is ignored
      std::string target;
      fdTarget(t.tid, 0, target);
      Process& proc = processes_[t.tgid];
      if (!target.empty() && target == proc.stdinReported) {
        localStats_["stdin_reads_repeated"]++;
        break;
      }
      proc.stdinReported = target;
      emitStdinRead(t.tid, std::move(target), s->name).count = static_cast<int64_t>(nr == __NR_mmap ? a[1] : a[2]);
      break;
    }
    case Handling::WriteStd:
      handleWriteEntry(t, nr, a);
      break;
    case Handling::MoveData:
      handleMoveData(t, *s, a);
      break;
    case Handling::StdioFd:
      handleStdioFd(t, nr, a);
      return;  // resumes itself
    case Handling::TermSize: {
      const TerminalRequest* r = findTerminalRequest(static_cast<uint32_t>(a[1]));
      if (!r) break;
      t.ioFd = static_cast<int>(a[0]);
      t.ioArg1 = a[2];
      t.ioArg2 = a[1];
      t.pending = r->changes ? Task::Pending::TermSetExit : Task::Pending::TermSizeExit;
      t.wantExitStop = true;
      break;
    }
    case Handling::Cpus: {
      // Asked of the tracer now, at the call's entry: the mask the call will report (pid 0
      // is the caller). Only the count is the input: nproc prints it, and the same number
      // of other CPUs (another batch job's cpuset) gives the same results.
      pid_t who = a[0] == 0 ? t.tid : static_cast<pid_t>(a[0]);
      // Another process's CPUs (taskset -p PID) are that process's state, not an input a
      // lookup could check. A thread of its own process shares its start (taken as the input).
      auto other = tasks_.find(who);
      if (who != t.tid && (other == tasks_.end() || other->second.tgid != t.tgid)) {
        emitUnknown(t, nr, s->name, "asked the CPUs of another process");
        break;
      }
      cpu_set_t set;
      CPU_ZERO(&set);
      if (sched_getaffinity(who, sizeof set, &set) != 0) break;
      Event& e = emit(EventKind::Fs, t.tid);
      e.op = "cpus";
      e.path = "/proc/self/status";  // where Cpus_allowed_list shows the same
      e.detail = std::to_string(CPU_COUNT(&set));
      break;
    }
    case Handling::Unknown:
      emitUnknown(t, nr, s->name, "not supported");
      break;
  }
  resume(t);
}

void Tracer::handlePathOp(Task& t, const SyscallSpec& s, const uint64_t* a) {
  Event e;
  BaseDirFn base = [&](int64_t dirfd, std::string& out) { return baseDir(t, dirfd, out); };
  if (!buildPathEvent(t.tid, t.tgid, s, a, base, &pathCache_, e)) return;
  if (batch_->events.empty()) batchStart_ = monotonicMicros();
  batch_->events.push_back(std::move(e));
  lastFsEvent_.op = batch_->events.back().op;
  lastFsEvent_.type = batch_->events.back().type;
  lastFsEvent_.type2 = batch_->events.back().type2;
  requestPreimageIfNeeded(t, batch_->events.back());
}

namespace {
std::string parentDir(const std::string& p) {
  size_t k = p.rfind('/');
  if (k == std::string::npos || k == 0) return "/";
  return p.substr(0, k);
}
}  // namespace

// A listing, or a file opened to be read only: what a later change must not lose (below).
// True when e is one of those (the listener's events are all reads or probes).
bool Tracer::noteRead(const Event& e) {
  if (strcmp(e.op, "getdents") == 0) {
    if (e.type == 'd') listedDirs_.insert(e.path);
    return true;
  }
  if (strcmp(e.op, "open") == 0 && e.type == 'f' && (e.flags & O_ACCMODE) == O_RDONLY && !(e.flags & O_TRUNC)) {
    readFiles_.insert(e.path);
    return true;
  }
  return false;
}

// Inputs must be what was read, not what the file became: before a tracee changes
// a file some tracee read (or opens one for update, or changes the entries of a
// directory some tracee listed), JS records the old state. Returns true when the
// tracee was left stopped for that.
bool Tracer::requestPreimageIfNeeded(Task& t, const Event& e) {
  if (noteRead(e)) return false;
  std::string op = e.op;
  const std::string* file = nullptr;
  if (op == "open" && e.type == 'f') {
    // Opened for update (its old bytes shape the result) or truncating a file read before.
    if (!(e.flags & O_TRUNC) || readFiles_.count(e.path)) file = &e.path;
  } else if ((op == "unlink" || op == "truncate") && e.type == 'f' && readFiles_.count(e.path)) {
    file = &e.path;
  } else if (op == "rename" && e.type2 == 'f' && readFiles_.count(e.path2)) {
    file = &e.path2;
  }
  // Entries appear or disappear: creating (open O_CREAT, mkdir, mknod, symlink, link) an
  // absent name, or removing/renaming an existing one.
  std::vector<std::string> dirs;
  if (!listedDirs_.empty()) {
    bool creates = (op == "open" && e.type == '-' && (e.flags & O_CREAT)) ||
                   ((op == "mkdir" || op == "mknod") && e.type == '-');
    bool removes = (op == "unlink" || op == "rmdir") && e.type != '-';
    if (creates || removes) dirs.push_back(parentDir(e.path));
    if ((op == "symlink" || op == "link") && e.type2 == '-') dirs.push_back(parentDir(e.path2));
    if (op == "rename" && e.type != '-') {
      dirs.push_back(parentDir(e.path));
      dirs.push_back(parentDir(e.path2));
    }
  }
  std::vector<PreimageItem> items;
  if (file) {
    readFiles_.erase(*file);  // the next read of the new content is a new story
    items.push_back({*file, "content"});
  }
  for (const std::string& d : dirs) {
    if (listedDirs_.erase(d)) items.push_back({d, "dirlist"});
  }
  if (items.empty()) return false;
  sendPreimage(t, std::move(items));
  return true;
}

void Tracer::sendPreimage(Task& t, std::vector<PreimageItem> items) {
  int64_t token = holdTask(t, Task::Pending::Preimage);
  batch_->hasPreimage = true;
  batch_->preimage = PreimageRequest{token, t.tid, std::move(items)};
  localStats_["preimage_requests"]++;
  flush();
}

void Tracer::handleExecEntry(Task& t, const SyscallSpec& s, const uint64_t* a) {
  bool at = s.nr == __NR_execveat;
  int64_t dirfd = at ? static_cast<int64_t>(static_cast<int>(a[0])) : AT_FDCWD;
  uint64_t pathArg = at ? a[1] : a[0];
  uint64_t argvArg = at ? a[2] : a[1];
  uint64_t envArg = at ? a[3] : a[2];
  int64_t flags = at ? static_cast<int64_t>(a[4]) : 0;
  std::string p;
  if (!readString(t.tid, pathArg, p, 1 << 16)) {
    resume(t);  // EFAULT: it will fail
    return;
  }
  ResolvedPath r;
  if (p.empty() && (flags & AT_EMPTY_PATH)) {
    std::string target;
    fdTarget(t.tid, static_cast<int>(dirfd), target);
    r = resolvePath(t.tid, t.tgid, "/", target, true);
  } else {
    std::string base;
    if (p[0] != '/' && !baseDir(t, dirfd, base)) {
      resume(t);
      return;
    }
    r = resolvePath(t.tid, t.tgid, base, p, !(flags & AT_SYMLINK_NOFOLLOW));
  }
  bool willRun = r.type == 'f' && access(r.path.c_str(), X_OK) == 0;
  if (!willRun) {
    Event& e = emit(EventKind::Fs, t.tid);
    e.op = "execve-probe";
    e.path = r.path;
    e.type = r.type;
    e.links = r.links;
    e.hasResult = true;
    e.result = r.type == '-' ? -ENOENT : -EACCES;
    t.wantExitStop = false;
    resume(t);
    return;
  }
  std::vector<std::string> argv;
  readStringArray(t.tid, argvArg, argv);
  uint64_t sig = execSignature(r.path, argv);
  bool ask = askExec_;
  if (ask && execFilterOn_) {
    std::lock_guard<std::mutex> g(execSigMu_);
    ask = execSigs_.count(sig) > 0;
  }
  ExecRequest* req;
  if (ask) {
    flush();  // every event before the request reaches JS first
    req = &batch_->exec;
  } else {
    if (batch_->events.empty() && batch_->execNotices.empty()) batchStart_ = monotonicMicros();
    batch_->execNotices.emplace_back();
    req = &batch_->execNotices.back();
    req->eventIndex = batch_->events.size();
  }
  req->token = nextToken_++;
  req->pid = t.tid;
  req->tgid = t.tgid;
  req->path = r.path;
  req->links = r.links;
  req->argv = std::move(argv);
  req->execSig = sig;
  readStringArray(t.tid, envArg, req->env);
  cwdOf(t, req->cwd);
  // Read now, while the tracee waits: read later (by JS, after the batch), a script
  // rewritten or a link re-pointed meanwhile would be recorded in its new state.
  execImpliedInputs(t.tid, t.tgid, r.path, req->cwd, &pathCache_, req->implied);
  req->umask = processes_[t.tgid].umask;
  // The CPUs it may run on survive the exec: what nproc there would print.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  req->cpus = sched_getaffinity(t.tid, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : -1;
  // Without a decision to make, the exec event's full snapshot (taken after the exec) is enough.
  if (askExec_) req->fds = execSnapshot(t.tid);
  req->time = nowMs();
  planStdio(t, req->token, req->readback);
  localStats_["exec_requests"]++;
  if (!ask) {
    // Nobody decides: it runs. Its request reaches JS with the next batch, in its place
    // among the events (after the events before it, before its exec event). Decided by
    // the filter, it is a miss: held at its exit like any execution that runs.
    req->decided = askExec_;
    if (req->decided) localStats_["exec_decided_by_filter"]++;
    t.pending = Task::Pending::ExecRunning;
    t.token = req->token;
    t.pendingHoldExit = req->decided;
    t.wantExitStop = false;
    if (req->readback || req->decided) ptrace(PTRACE_SETOPTIONS, t.tid, 0, kOptions | PTRACE_O_TRACEEXIT);
    unsigned fds = t.injectFds;
    t.injectFds = 0;
    if (fds && injectStdioStops(t, fds, Task::Pending::ExecRunning)) return;  // a relay follows
    if (t.relay) {
      startRelay(t);
      return;
    }
    resume(t);
    return;
  }
  batch_->hasExec = true;
  t.pending = Task::Pending::ExecDecision;
  t.token = req->token;
  tokens_[req->token] = t.tid;
  flush();
}

void Tracer::handleSockAddr(Task& t, const SyscallSpec& s, const uint64_t* a) {
  uint64_t addr = 0, len = 0;
  if (s.nr == __NR_connect || s.nr == __NR_bind) {
    addr = a[1];
    len = a[2];
  } else if (s.nr == __NR_sendto) {
    addr = a[4];
    len = a[5];
  } else {  // sendmsg/sendmmsg: msghdr.msg_name
    msghdr mh;
    if (!readBytes(t.tid, a[1], &mh, sizeof mh)) return;
    addr = reinterpret_cast<uint64_t>(mh.msg_name);
    len = mh.msg_namelen;
  }
  if (addr == 0) return;  // a connected socket: its connect() was already seen
  std::string raw;
  if (len > 128) len = 128;
  if (!readBytes(t.tid, addr, static_cast<size_t>(len), raw)) return;
  Event& e = emit(EventKind::Net, t.tid);
  e.netOp = s.nr == __NR_connect ? "connect" : s.nr == __NR_bind ? "bind" : "sendto";
  e.address = formatSockaddr(raw, e.family);
}

// Whether the stopped task blocks SIGPIPE (unknown counts as blocked). A write to a pipe
// with no reader then fails with EPIPE and no signal is delivered to show it.
static bool sigpipeBlocked(pid_t tid) {
  uint64_t mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, tid, sizeof mask, &mask) != 0) return true;
  return (mask & (1ull << (SIGPIPE - 1))) != 0;
}

// The iovec array of a writev-family call (iovcnt capped at IOV_MAX).
static bool readIovecs(pid_t tid, uint64_t addr, uint64_t count, std::vector<iovec>& iov) {
  iov.resize(std::min<uint64_t>(count, 1024));
  return iov.empty() || readBytes(tid, addr, iov.data(), iov.size() * sizeof(iovec));
}

// The bytes a write-family call passes (buf/count, or iovecs/iovcnt), at most `want`.
static bool readWriteBuffers(pid_t tid, int nr, uint64_t buf, uint64_t count, size_t want, std::string& out) {
  if (nr == __NR_write || nr == __NR_pwrite64) return readBytes(tid, buf, std::min<uint64_t>(count, want), out);
  std::vector<iovec> iov;
  if (!readIovecs(tid, buf, count, iov)) return false;
  for (size_t i = 0; i < iov.size() && out.size() < want; i++) {
    size_t n = std::min(iov[i].iov_len, want - out.size());
    std::string part;
    if (!readBytes(tid, reinterpret_cast<uint64_t>(iov[i].iov_base), n, part)) return false;
    out += part;
  }
  return true;
}

void Tracer::handleWriteEntry(Task& t, int nr, const uint64_t* a) {
  t.ioNr = nr;
  t.ioFd = static_cast<int>(a[0]);
  t.ioArg1 = a[1];
  t.ioArg2 = a[2];
  fdTarget(t.tid, t.ioFd, t.ioTarget);
  bool pass = passesWrite(t, t.ioFd, t.ioTarget);
  if (pass && (nr == __NR_write || nr == __NR_writev)) return;
  if (t.ioTarget == "/dev/null") {
    // Nobody can read these bytes back, and a write there always takes all of them: the
    // count is known now, no exit stop and no copy (`cmd > /dev/null` writes at full speed).
    int64_t count = 0;
    if (nr == __NR_write || nr == __NR_pwrite64) {
      count = static_cast<int64_t>(a[2]);
    } else {
      std::vector<iovec> iov;
      if (readIovecs(t.tid, a[1], a[2], iov))
        for (const iovec& v : iov) count += static_cast<int64_t>(v.iov_len);
    }
    std::string none;
    appendStdioWrite(t, none, false, count);
    return;
  }
  if (pass || !(processes_[t.tgid].stdioStops & (1u << t.ioFd))) {
    // pwrite on an fd whose writes are read back (or not stopped at all): where its bytes
    // land is not where a replay would put them.
    emitStdioWrite(t, 0).uncapturable = true;
    return;
  }
  if ((nr == __NR_write || nr == __NR_writev) && strcmp(classifyTarget(t.ioTarget), "pipe") == 0 && !sigpipeBlocked(t.tid)) {
    // A blocking pipe takes every byte unless a signal interrupts the write, and a signal
    // cannot go unseen (checkWriteInFlight): copy the bytes now, no exit stop. The exit stop
    // stays where the count can differ without a signal: a non-blocking pipe (EAGAIN), a
    // SIGPIPE that is blocked (EPIPE with no signal delivered), pwrite (ESPIPE on a pipe).
    int64_t pos = 0, flags = 0;
    if (fdInfo(t.tid, t.ioFd, pos, flags) && (flags & O_NONBLOCK) == 0) {
      std::string target = t.ioTarget;
      std::string piece;
      bool ok = readWriteBuffers(t.tid, nr, a[1], a[2], SIZE_MAX, piece);
      t.writeInFlight = true;
      t.writeCount = static_cast<int64_t>(piece.size());
      if (ok) {
        t.writeDataStart = appendStdioWrite(t, piece, true);
      } else {
        emitStdioWrite(t, 0).uncapturable = true;
        t.writeDataStart = 0;
      }
      t.writeTarget = std::move(target);
      t.writeBatchSeq = batchSeq_;
      t.writeEventIndex = batch_->events.size() - 1;
      return;
    }
  }
  t.pending = Task::Pending::WriteExit;
  t.wantExitStop = true;  // the bytes are known only once the kernel says how many went out
}

void Tracer::handleMoveData(Task& t, const SyscallSpec& s, const uint64_t* a) {
  int outFd = -1, inFd = -1;
  uint64_t inOffPtr = 0;
  switch (s.nr) {
    case __NR_sendfile: outFd = static_cast<int>(a[0]); inFd = static_cast<int>(a[1]); inOffPtr = a[2]; break;
    case __NR_splice:
    case __NR_copy_file_range:
      inFd = static_cast<int>(a[0]); inOffPtr = a[1]; outFd = static_cast<int>(a[2]); break;
    case __NR_tee: inFd = static_cast<int>(a[0]); outFd = static_cast<int>(a[1]); break;
    case __NR_vmsplice: outFd = static_cast<int>(a[0]); break;
  }
  if (inFd == 0) {
    std::string target;
    fdTarget(t.tid, 0, target);
    emitStdinRead(t.tid, std::move(target), s.name);
  }
  if (outFd != 1 && outFd != 2) return;
  std::string outTarget;
  if (fdTarget(t.tid, outFd, outTarget) && passesWrite(t, outFd, outTarget)) return;
  std::string inTarget;
  bool fileSource = (s.nr == __NR_sendfile || s.nr == __NR_copy_file_range) && inFd >= 0 &&
                    fdTarget(t.tid, inFd, inTarget) && strcmp(classifyTarget(inTarget), "file") == 0;
  if (fileSource) {
    // The bytes come from a regular file: read the same range ourselves at syscall exit.
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%d", t.tid, inFd);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    int64_t off = 0, fl = 0;
    bool haveOff = inOffPtr ? readBytes(t.tid, inOffPtr, &off, sizeof off) : fdInfo(t.tid, inFd, off, fl);
    if (fd >= 0 && haveOff) {
      if (t.copySrcFd >= 0) close(t.copySrcFd);
      t.copySrcFd = fd;
      t.copyOffset = off;
      t.ioNr = s.nr;
      t.ioFd = outFd;
      t.ioTarget = outTarget;
      t.pending = Task::Pending::CopyExit;
      t.wantExitStop = true;
      return;
    }
    if (fd >= 0) close(fd);
  }
  emitUncapturable(t, outFd, s.name);
}

// Bytes went (or may go) to fd 1/2 without pcache seeing them.
void Tracer::emitUncapturable(Task& t, int fd, const char* syscall) {
  Event& e = emit(EventKind::Io, t.tid);
  e.fd = fd;
  e.dir = 'w';
  fdTarget(t.tid, fd, e.target);
  e.fdKind = classifyTarget(e.target);
  e.uncapturable = true;
  e.syscall = syscall;
}

// fd 0's target read, or taken to be read, by the task's execution.
Event& Tracer::emitStdinRead(pid_t tid, std::string target, const char* syscall) {
  Event& e = emit(EventKind::Io, tid);
  e.fd = 0;
  e.dir = 'r';
  e.target = std::move(target);
  e.fdKind = classifyTarget(e.target);
  e.syscall = syscall;
  return e;
}

// Bytes of the stdout of the execution that exec request `token` started, taken other than
// write by write (a file read back, a relay); the fold gives them to that execution.
Event& Tracer::emitReadbackIo(pid_t pid, int fd, std::string target, const char* kind, const char* syscall, int64_t token) {
  Event& e = emit(EventKind::Io, pid);
  e.fd = fd;
  e.dir = 'w';
  e.target = std::move(target);
  e.fdKind = kind;
  e.syscall = syscall;
  e.readback = true;
  e.token = token;
  return e;
}

// Bytes that reached fd 1/2, added to the batch's last event when that is the same task's
// write to the same place: a stdio loop writing 4 KiB at a time then crosses to JS as one
// event per batch, not one per call (the order among all events is unchanged). Returns
// where the piece starts in the event's data. Without data (/dev/null), `count` adds up.
size_t Tracer::appendStdioWrite(Task& t, std::string& piece, bool withData, int64_t count) {
  if (withData) count = static_cast<int64_t>(piece.size());
  if (!batch_->events.empty()) {
    Event& l = batch_->events.back();
    if (l.kind == EventKind::Io && l.dir == 'w' && l.pid == t.tid && l.fd == t.ioFd && !l.uncapturable &&
        l.hasData == withData && (l.hasData ? l.data.size() < kMergedWriteMax : true) &&
        strcmp(l.syscall, syscallName(t.ioNr)) == 0 && l.target == t.ioTarget) {
      size_t start = l.data.size();
      if (withData) l.data += piece;
      l.count += count;
      localStats_["writes_merged"]++;
      return start;
    }
  }
  Event& e = emitStdioWrite(t, count);
  e.hasData = withData;
  if (withData) e.data = std::move(piece);
  return 0;
}

// Bytes that reached fd 1/2; the caller fills `data`.
Event& Tracer::emitStdioWrite(Task& t, int64_t count) {
  Event& e = emit(EventKind::Io, t.tid);
  e.fd = t.ioFd;
  e.dir = 'w';
  e.target = std::move(t.ioTarget);
  e.fdKind = classifyTarget(e.target);
  e.count = count;
  e.syscall = syscallName(t.ioNr);
  e.hasData = true;
  return e;
}

void Tracer::handleSyscallExit(Task& t) {
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, t.tid, 0, &regs) != 0) return;
  int64_t ret = static_cast<int64_t>(regs.rax);
  Task::Pending p = t.pending;
  t.pending = Task::Pending::None;
  t.wantExitStop = false;
  if (t.treeChangeExit) {
    t.treeChangeExit = false;
    clearPathCaches();
  }
  switch (p) {
    case Task::Pending::InjectExit:
      finishInject(t, ret);
      break;
    case Task::Pending::RelayOpenExit:
      if (ret < 0) {
        relayFailed(t);
        reissueCall(t, Task::Pending::ExecRunning);
        break;
      } else {
        // dup2(fd, 1) next, by the same syscall instruction
        user_regs_struct call = regs;
        call.orig_rax = __NR_dup2;
        call.rax = __NR_dup2;
        call.rdi = static_cast<uint64_t>(ret);
        call.rsi = 1;
        call.rip -= 2;
        if (ptrace(PTRACE_SETREGS, t.tid, 0, &call) != 0) {
          relayFailed(t);
          reissueCall(t, Task::Pending::ExecRunning);
          break;
        }
        t.pending = Task::Pending::RelayDupEntry;
      }
      break;
    case Task::Pending::RelayDupExit:
      if (ret == 1 && t.relay) {
        setPipeAlias(t.relay->relayName, t.relay->target);
        relayHub_->start(t.relay);
        t.relay.reset();
        localStats_["relays"]++;
      } else {
        relayFailed(t);
      }
      reissueCall(t, Task::Pending::ExecRunning);
      break;
    case Task::Pending::ChdirExit:
      processes_[t.tgid].cwdValid = false;
      break;
    case Task::Pending::TreeChangeExit:
      clearPathCaches();
      break;
    case Task::Pending::WriteExit:
      if (ret > 0) {
        std::string piece;
        if (readWriteBuffers(t.tid, t.ioNr, t.ioArg1, t.ioArg2, static_cast<size_t>(ret), piece))
          appendStdioWrite(t, piece, true);
        else
          emitStdioWrite(t, ret).uncapturable = true;
      }
      break;
    case Task::Pending::TermSizeExit: {
      // What the program was told, not what pcache would see asking now.
      winsize ws;
      std::string target;
      if (ret == 0 && readBytes(t.tid, t.ioArg1, &ws, sizeof ws) && fdTarget(t.tid, t.ioFd, target)) {
        Event& e = emit(EventKind::Fs, t.tid);
        e.op = "termsize";
        e.path = std::move(target);
        e.type = 'c';
        e.fd = t.ioFd;
        e.detail = std::to_string(ws.ws_row) + "x" + std::to_string(ws.ws_col);
      }
      break;
    }
    case Task::Pending::TermSetExit: {
      const TerminalRequest* r = findTerminalRequest(static_cast<uint32_t>(t.ioArg2));
      std::string target;
      if (ret == 0 && r && fdTarget(t.tid, t.ioFd, target)) {
        Event& e = emit(EventKind::Fs, t.tid);
        e.op = "termset";
        e.path = std::move(target);
        e.type = 'c';
        e.fd = t.ioFd;
        e.detail = r->name;
      }
      break;
    }
    case Task::Pending::CopyExit:
      if (ret > 0) {
        Event& e = emitStdioWrite(t, ret);
        e.data.resize(static_cast<size_t>(ret));
        ssize_t got = pread(t.copySrcFd, &e.data[0], static_cast<size_t>(ret), t.copyOffset);
        if (got != ret) e.uncapturable = true;
      }
      if (t.copySrcFd >= 0) close(t.copySrcFd);
      t.copySrcFd = -1;
      break;
    default:
      break;
  }
  resume(t);
}

// ---------------------------------------------------------------- stdio write stops
//
// The base filter does not stop writes to fd 1/2. A process gets a second filter that does
// (buildStdioFilter) only when it must: when, at an exec, fd 1/2 hold something whose
// bytes can only be captured write by write (a pipe, a terminal, a file shared with another
// process), or when dup2/close is about to put such a thing there. Filters are inherited and
// never removed, so a process that got one keeps it, and so do its children.
//
// Where fd 1 is a regular file this process alone holds, the execution needs no stops at
// all: its stdout is the region of the file between the description's offset at exec and
// at its end, read back at its exit stop (emitReadbacks). `seqtk ... > file` then runs at
// full speed. /dev/null needs nothing either. Where fd 1 is a pipe made inside the
// pipeline, a relay takes its place (planRelay, "pipe relays" below).

// ---------------------------------------------------------------- stdin
//
// Reads of fd 0 do not stop in the base filter either. What a read tells is only whether an
// execution reads its stdin (a pipe or terminal from outside: uncacheable; a file: a content
// input), and the first read of each process said it all; in `bwa mem | samtools sort` the
// rest were about 83,000 stops per variant run. So at each exec (planStdio), where fd 0 is
// neither closed nor /dev/null:
// - a process that put it there itself since its fork (the forked shell of `a | b`, bash's
//   `b < f`) is taken to read it: the exec event is followed by a read of it, no stops;
// - one that execs with the fd 0 it inherited gets read stops (buildStdioFilter bit 0),
//   kept by its children: the body of `... | while read x`, which seldom reads it, and
//   every process when pcache's own stdin is a terminal or a pipe.
// A process without read stops that moves something onto fd 0 (dup2, dup3, dup/F_DUPFD
// into a closed fd 0) is taken to read that at once (a builtin may), and its execs are
// judged as above. A file opened straight onto fd 0 (close(0) then open) is already an
// input of its opener, and what it execs with it is judged or stops.

// The bytes of [at, at + len) of a file, all of them or false.
static bool readRange(int fd, int64_t at, size_t len, std::string& out) {
  out.resize(len);
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, &out[got], len - got, static_cast<off_t>(at) + static_cast<off_t>(got));
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

// The status flags of fd `fd` of `pid` (/proc/PID/fdinfo, octal), or -1.
static long fdFlags(pid_t pid, const char* fd) {
  char p[320], buf[256];
  snprintf(p, sizeof p, "/proc/%d/fdinfo/%s", pid, fd);
  int f = open(p, O_RDONLY | O_CLOEXEC);
  if (f < 0) return -1;
  ssize_t n = read(f, buf, sizeof buf - 1);
  close(f);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char* flags = strstr(buf, "flags:");
  return flags ? static_cast<long>(strtoul(flags + 6, nullptr, 8)) : -1;
}

// Whether process `pid` has an fd other than `except` that names `target` (/proc/PID/fd);
// false when its fds cannot be listed. `execing`: the process is at its execve, and its
// close-on-exec fds are about to go (the root at its first exec still has pcache's).
// `writers`: only fds open for writing count (a pipe's read end names it too).
static bool hasFdOn(pid_t pid, const std::string& target, int except = -1, bool execing = false, bool writers = false) {
  char dir[64], link[320], buf[4096];
  snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
  DIR* d = opendir(dir);
  if (!d) return false;
  bool found = false;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.' || atoi(ent->d_name) == except) continue;
    snprintf(link, sizeof link, "%s/%s", dir, ent->d_name);
    ssize_t len = readlink(link, buf, sizeof buf);
    if (len <= 0 || static_cast<size_t>(len) != target.size() || memcmp(buf, target.data(), target.size()) != 0) continue;
    long fl = execing || writers ? fdFlags(pid, ent->d_name) : -1;  // unknown: counts
    if (fl >= 0 && ((execing && (fl & O_CLOEXEC)) || (writers && (fl & O_ACCMODE) == O_RDONLY))) continue;
    found = true;
    break;
  }
  closedir(d);
  return found;
}

// Bytes the process has written with write-family calls so far (/proc/PID/io wchar).
static bool writtenBytes(pid_t pid, uint64_t& out) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/io", pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* w = strstr(buf, "wchar:");
  if (!w) return false;
  out = strtoull(w + 6, nullptr, 10);
  return true;
}

void Tracer::planStdio(Task& t, int64_t token, bool& readback) {
  Process& proc = processes_[t.tgid];
  unsigned inject = 0;
  proc.judgeStdin = false;
  if (!((proc.stdioStops | proc.uncapturedFds) & 1u)) {
    std::string target;
    if (fdTarget(t.tid, 0, target) && target != "/dev/null") {
      if (proc.stdinSetHere)
        proc.judgeStdin = true;
      else
        inject |= 1u;
    }
  }
  for (int fd = 1; fd <= 2; fd++) {
    unsigned bit = 1u << fd;
    if (proc.uncapturedFds & bit) continue;
    bool stopped = (proc.stdioStops & bit) != 0;
    // Stopped already (a filter inherited from a caller whose stdout is a terminal, a pipe or
    // pcache's own log file): fd 1 is still read back where it can be, and its write stops
    // then pass without a copy, as they would not stop without the filter. Where a process
    // without it would get one (not read back, or an exec chain whose outer region goes on
    // and whose inner execution needs its own bytes), the pass ends and the stops capture.
    if (stopped && fd == 2) continue;
    if (stopped) {
      proc.passToken = 0;
      proc.passTarget.clear();
    }
    std::string target;
    if (!fdTarget(t.tid, fd, target)) continue;  // closed: what it gets later is its own
    if (target == "/dev/null") continue;
    if (fd == 1 && startReadback(t, fd, target, token)) {
      readback = true;
      if (stopped) {
        proc.passToken = token;
        proc.passTarget = target;
      }
      continue;
    }
    if (fd == 1 && !stopped && planRelay(t, target, token)) {
      readback = true;  // its stdout comes as relay events for this request (drainRelays)
      continue;
    }
    if (!stopped) inject |= bit;
  }
  t.injectFds = inject;
}

bool Tracer::startReadback(Task& t, int fd, const std::string& target, int64_t token) {
  if (target.empty() || target[0] != '/') return false;
  Process& proc = processes_[t.tgid];
  for (const Readback& r : proc.readbacks)
    if (r.fd == fd) return false;  // an exec chain: the outer execution's region goes on
  char link[64];
  snprintf(link, sizeof link, "/proc/%d/fd/%d", t.tid, fd);
  struct stat st;
  if (stat(link, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (ownStdio_.count({st.st_dev, st.st_ino}) && !(fd == 1 && ownStdoutReadable(target, {st.st_dev, st.st_ino})))
    return false;
  std::vector<pid_t> others;
  if (!otherHolders(t.tgid, fd, target, others)) return false;
  std::vector<std::pair<pid_t, uint64_t>> holders;
  for (pid_t h : others) {
    uint64_t w;
    if (!writtenBytes(h, w)) return false;
    holders.push_back({h, w});
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, t.tgid, 0));
  if (pidfd < 0) return false;
  int dup = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  close(pidfd);
  if (dup < 0) return false;
  snprintf(link, sizeof link, "/proc/self/fd/%d", dup);
  int rd = open(link, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  struct stat now;
  int fl = fcntl(dup, F_GETFL);
  off_t pos = lseek(dup, 0, SEEK_CUR);
  // O_APPEND (`>> log`): a process outside pcache appending to the same file (a shared log)
  // would land inside the region, and nothing here would see it. Those stop per write.
  // What is before the region is kept to be compared at the end (writes through a duplicate
  // of the fd, which nothing stops, could land there); past kReadbackPrefixMax the execution
  // stops on its writes instead.
  std::string prefix;
  if (rd < 0 || fl < 0 || (fl & O_APPEND) || pos < 0 || pos > kReadbackPrefixMax || fstat(dup, &now) != 0 ||
      now.st_ino != st.st_ino || !readRange(rd, 0, static_cast<size_t>(pos), prefix)) {
    if (rd >= 0) close(rd);
    close(dup);
    return false;
  }
  Readback r;
  r.token = token;
  r.fd = fd;
  r.dupFd = dup;
  r.readFd = rd;
  r.start = pos;
  r.sizeAtStart = now.st_size;
  r.prefix = std::move(prefix);
  r.target = target;
  r.holders = std::move(holders);
  r.ownStdout = ownStdio_.count({st.st_dev, st.st_ino}) > 0;
  proc.readbacks.push_back(std::move(r));
  liveReadbacks_.insert(token);
  localStats_["readbacks"]++;
  return true;
}

// Calls fn with /proc/PID/task/TID for each thread of `pid` until it returns false; false
// then, or when the threads cannot be listed.
static bool eachTask(pid_t pid, const std::function<bool(const char*)>& fn) {
  char dir[64], p[352];
  snprintf(dir, sizeof dir, "/proc/%d/task", pid);
  DIR* d = opendir(dir);
  if (!d) return false;
  bool ok = true;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, ent->d_name);
    if (!(ok = fn(p))) break;
  }
  closedir(d);
  return ok;
}

// The children of `pid` (all its threads'), from /proc/PID/task/*/children; false if unknown.
static bool childrenOf(pid_t pid, std::set<pid_t>& out) {
  return eachTask(pid, [&](const char* task) {
    std::string p = std::string(task) + "/children";
    FILE* f = fopen(p.c_str(), "re");
    if (!f) return false;
    int c;
    while (fscanf(f, "%d", &c) == 1) out.insert(c);
    fclose(f);
    return true;
  });
}

// Whether every thread of `pid` is blocked in wait4/waitid (/proc/PID/task/TID/syscall).
static bool allThreadsWaiting(pid_t pid) {
  return eachTask(pid, [](const char* task) {
    char buf[64];
    std::string p = std::string(task) + "/syscall";
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    long nr = n > 0 ? (buf[n] = 0, strtol(buf, nullptr, 10)) : -1;
    return n > 0 && (nr == __NR_wait4 || nr == __NR_waitid);
  });
}

// Minor faults of the children `pid` has waited for (/proc/PID/stat field 11).
static bool reapedFaults(pid_t pid, uint64_t& out) {
  char p[64], buf[1024];
  snprintf(p, sizeof p, "/proc/%d/stat", pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* s = strrchr(buf, ')');  // the command name may hold spaces and parentheses
  if (!s) return false;
  unsigned long long v[9];  // fields 3-11: state, ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt
  char state;
  if (sscanf(s + 1, " %c %llu %llu %llu %llu %llu %llu %llu %llu", &state, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
             &v[7]) != 9)
    return false;
  out = v[7];
  return true;
}

// pcache's own stdout can be read back like any step's (the root's region, and those of
// the steps writing there inside it) when it is a regular file that nothing outside
// pcache's tree can write through while it runs: not pcache's stderr too
// (pcache's own messages go there), and held by no process outside the traced tree besides
// pcache and its parent waiting for it. That is the usual `pcache -- ./p.sh > log`: bash
// opens the file in the child that becomes pcache; dash (and a batch job's shell whose own
// stdout is the log) keep it on their fd 1 and wait. The parent counts only if pcache is
// its one child and every thread of it is blocked in wait4/waitid (a runner busy with other
// work, a test harness in its event loop: stops as before, rather than a region found
// spoilt at the end); when the region ends it must not have written (wchar), nor reaped a
// child (cminflt), nor have another child: a child it forked meanwhile could have written
// through the same description (`{ pcache ... & echo X; } > log`, `make -j > log`), and
// nothing here could tell those bytes from the pipeline's. Any other holder (a sibling, a
// workflow runner sharing its stdout with its jobs, a grandparent) and every write to the
// file stops, as before. Looked at once, when the root starts: afterwards only pcache, its
// parent and its tracees (which otherHolders sees) can pass the description on. Steps side
// by side (`xargs -P`, `&`) that share it spoil each other's regions unless nothing is
// written there while they run (emitReadbacks keeps an empty region whoever held the file);
// ones that do write there concurrently are not stored, as with stops (whose offset check,
// cached-run.ts, finds the same).
bool Tracer::ownStdoutReadable(const std::string& target, std::pair<uint64_t, uint64_t> file) {
  if (file != ownStdout_ || file == ownStderr_) return false;
  if (ownStdoutAlone_ >= 0) return ownStdoutAlone_ == 1;
  ownStdoutAlone_ = 0;
  DIR* procDir = opendir("/proc");
  if (!procDir) return false;
  pid_t self = getpid(), parent = getppid();
  bool alone = true;
  while (dirent* p = readdir(procDir)) {
    pid_t pid = static_cast<pid_t>(atoi(p->d_name));
    if (pid <= 0 || pid == self || processes_.count(pid)) continue;
    // Gone, or another user's (which cannot have been handed ours unseen): not a holder.
    if (!hasFdOn(pid, target)) continue;
    OutsideHolder h;
    h.pid = pid;
    std::set<pid_t> children;
    if (pid != parent || !childrenOf(pid, children) || children != std::set<pid_t>{self} || !allThreadsWaiting(pid) ||
        !writtenBytes(pid, h.wchar) || !reapedFaults(pid, h.cminflt)) {
      alone = false;
      break;
    }
    ownStdoutHolders_.push_back(h);
  }
  closedir(procDir);
  if (!alone) ownStdoutHolders_.clear();
  localStats_["own_stdout_scan"] = alone ? 1 : 2;
  ownStdoutAlone_ = alone ? 1 : 0;
  return alone;
}

bool Tracer::outsideHoldersQuiet() const {
  pid_t self = getpid();
  for (const OutsideHolder& h : ownStdoutHolders_) {
    uint64_t wchar, cminflt;
    std::set<pid_t> children;
    if (!writtenBytes(h.pid, wchar) || wchar != h.wchar || !reapedFaults(h.pid, cminflt) || cminflt != h.cminflt ||
        !childrenOf(h.pid, children) || children != std::set<pid_t>{self})
      return false;
  }
  return true;
}

// The other traced processes with an fd on the file (any fd: another description of it is
// another writer too). False when this process has it on another fd as well (`2>&1`).
bool Tracer::otherHolders(pid_t tgid, int fd, const std::string& target, std::vector<pid_t>& holders) {
  for (const auto& [pid, proc] : processes_) {
    if (proc.tasks.empty()) continue;
    bool shared = pid == tgid ? hasFdOn(pid, target, fd, true) : hasFdOn(pid, target);  // false when gone
    if (shared && pid == tgid) return false;
    if (shared) holders.push_back(pid);
  }
  return true;
}

// ---------------------------------------------------------------- pipe relays
//
// A step whose stdout is a pipe would stop on every write to it (its stdout is captured).
// Instead, at its exec, it gets a pipe of pcache's on fd 1 (opened through /proc/<pcache>/fd
// and dup2'd there by injected calls), and a relay thread (relay.h) copies what arrives on
// into the original pipe, keeping a copy as the execution's stdout. The relay pipe reads as
// the original everywhere the tracer reports fds (procfs.h, setPipeAlias), so the fold and
// the key see what a plain run has. Only where nothing else could write into the original
// pipe meanwhile (its bytes would interleave with the relay's in other pieces than the
// writes that made them), where fd 2 is not the same pipe (the order of the two streams
// would be lost), and where the tracee may open pcache's fds (same user, or root).
bool Tracer::planRelay(Task& t, const std::string& target, int64_t token) {
  if (!relayEnabled_ || target.compare(0, 5, "pipe:") != 0) return false;
  std::string raw, err;
  if (!fdTargetRaw(t.tid, 1, raw) || (fdTargetRaw(t.tid, 2, err) && err == raw)) return false;
  // A relay's own pipe (a child or an exec of a relayed step): stops, as without relays. A
  // second relay would hand its bytes on to the first after the exit stop that must see them.
  if (isPipeAlias(raw)) return false;
  char link[64];
  snprintf(link, sizeof link, "/proc/%d/fd/1", t.tid);
  struct stat st;
  if (stat(link, &st) != 0 || !S_ISFIFO(st.st_mode) || ownStdio_.count({st.st_dev, st.st_ino})) return false;
  snprintf(link, sizeof link, "/proc/%d", t.tgid);
  uid_t me = geteuid();
  if (stat(link, &st) != 0 || (me != 0 && st.st_uid != me)) return false;
  for (const auto& [pid, proc] : processes_) {
    if (proc.tasks.empty()) continue;
    if (hasFdOn(pid, raw, pid == t.tgid ? 1 : -1, pid == t.tgid, true)) return false;
  }
  std::string why;
  auto r = relayHub_->create(t.tid, token, t.tgid, target, why);
  if (!r) return false;
  t.relay = std::move(r);
  return true;
}

// At the exec's seccomp stop, JS having let it run: the execve is swapped for
// openat("/proc/<pcache>/fd/<relay write end>", O_WRONLY | O_CLOEXEC), then dup2 onto fd 1
// (the close-on-exec fd goes with the exec), then the execve is issued again.
void Tracer::startRelay(Task& t) {
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, t.tid, 0, &regs) != 0) {
    relayFailed(t);
    resume(t);
    return;
  }
  std::string path = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(t.relay->writeFd);
  uint64_t addr = (regs.rsp - 256 - path.size() - 1) & ~uint64_t(15);
  int64_t pos = 0, flags = 0;
  fdInfo(t.tid, 1, pos, flags);
  if (!writeBytes(t.tid, addr, path.c_str(), path.size() + 1)) {
    relayFailed(t);
    resume(t);
    return;
  }
  user_regs_struct call = regs;
  call.orig_rax = __NR_openat;
  call.rax = __NR_openat;
  call.rdi = static_cast<uint64_t>(static_cast<int64_t>(AT_FDCWD));
  call.rsi = addr;
  call.rdx = O_WRONLY | O_CLOEXEC | (flags & O_NONBLOCK);
  call.r10 = 0;
  if (ptrace(PTRACE_SETREGS, t.tid, 0, &call) != 0) {
    relayFailed(t);
    resume(t);
    return;
  }
  t.injectSaved = regs;
  t.pending = Task::Pending::RelayOpenExit;
  t.wantExitStop = true;
  resume(t);
}

// The relay could not be put in place: the tracee writes into its pipe directly, and
// without stops. Its execution (and every caller sharing that stdout) must not be stored.
void Tracer::relayFailed(Task& t) {
  if (!t.relay) return;
  processes_[t.tgid].relayFailedToken = t.relay->token;
  relayHub_->cancel(t.relay);
  t.relay.reset();
  localStats_["relays_failed"]++;
}

// Puts back the call injected ones were swapped in for (t.injectSaved), to be issued
// again; `after` is the task's state once it is.
void Tracer::reissueCall(Task& t, Task::Pending after) {
  user_regs_struct back = t.injectSaved;
  back.rax = back.orig_rax;
  back.rip -= 2;  // the syscall instruction again
  ptrace(PTRACE_SETREGS, t.tid, 0, &back);
  t.reissue = true;
  t.reissueNr = static_cast<int64_t>(back.orig_rax);
  t.afterReissue = after;
  t.wantExitStop = false;
}

// What the relays have read, as the stdout of their executions: at every exit stop (before
// anyone hears of the exit) and whenever a relay thread says it holds a lot.
void Tracer::drainRelays(bool readPipes) {
  relayHub_->drain(readPipes, [this](const RelayHub::Relay& r, std::string& bytes) {
    Event& e = emitReadbackIo(r.owner, 1, r.target, "pipe", "relay", r.token);
    e.hasData = true;
    e.count = static_cast<int64_t>(bytes.size());
    localStats_["relayed_bytes"] += bytes.size();
    // A large capture is handed over whole; a small one copied, so the relay keeps the
    // string's room for what comes next.
    if (bytes.size() >= kDataHandOverBytes) {
      e.data.swap(bytes);
    } else {
      e.data.assign(bytes);
    }
  });
}

// Swaps the call the task is stopped in (seccomp stop) for seccomp(SET_MODE_FILTER, TSYNC)
// with the write filter for `fds`, written below its stack pointer (past the red zone);
// finishInject then puts the call back to be issued again.
bool Tracer::injectStdioStops(Task& t, unsigned fds, Task::Pending after) {
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, t.tid, 0, &regs) != 0) return false;  // gone
  std::vector<sock_filter> filter = buildStdioFilter(fds);
  size_t bytes = filter.size() * sizeof(sock_filter);
  uint64_t base = (regs.rsp - 256 - bytes - 16) & ~uint64_t(15);
  sock_fprog prog{static_cast<unsigned short>(filter.size()), reinterpret_cast<sock_filter*>(base + 16)};
  if (!writeBytes(t.tid, base + 16, filter.data(), bytes) || !writeBytes(t.tid, base, &prog, sizeof prog)) {
    markUncaptured(t, fds, after != Task::Pending::ExecRunning);
    return false;
  }
  user_regs_struct call = regs;
  call.orig_rax = __NR_seccomp;
  call.rax = __NR_seccomp;
  call.rdi = SECCOMP_SET_MODE_FILTER;
  call.rsi = SECCOMP_FILTER_FLAG_TSYNC;
  call.rdx = base;
  if (ptrace(PTRACE_SETREGS, t.tid, 0, &call) != 0) {
    markUncaptured(t, fds, after != Task::Pending::ExecRunning);
    return false;
  }
  t.injectSaved = regs;
  t.injectingFds = fds;
  t.afterReissue = after;
  t.pending = Task::Pending::InjectExit;
  t.wantExitStop = true;
  resume(t);
  localStats_["stdio_filters_added"]++;
  return true;
}

void Tracer::finishInject(Task& t, int64_t ret) {
  unsigned fds = t.injectingFds;
  t.injectingFds = 0;
  if (ret == 0) {
    processes_[t.tgid].stdioStops |= fds;
  } else {
    markUncaptured(t, fds, t.afterReissue != Task::Pending::ExecRunning);
  }
  reissueCall(t, t.afterReissue);
}

// Writes to these fds cannot be captured in this process: every execution that has them as
// its stdout/stderr hears so (now, and again at each exec of this process or its children).
void Tracer::markUncaptured(Task& t, unsigned fds, bool now) {
  Process& proc = processes_[t.tgid];
  proc.uncapturedFds |= fds;
  if (!now) return;
  if (fds & 1u) {
    std::string target;
    fdTarget(t.tid, 0, target);
    emitStdinRead(t.tid, std::move(target), "seccomp").uncapturable = true;
  }
  for (int fd = 1; fd <= 2; fd++)
    if (fds & (1u << fd)) emitUncapturable(t, fd, "seccomp");
}

// dup2/dup3 onto fd 1/2, and dup/fcntl(F_DUPFD) while fd 1 or 2 is closed, in a process
// whose writes there do not stop yet: after the call fd 1/2 may hold something to capture.
void Tracer::handleStdioFd(Task& t, int nr, const uint64_t* a) {
  Process& proc = processes_[t.tgid];
  unsigned need = 0;
  {
    int oldfd = static_cast<int>(a[0]);
    // dup and fcntl(F_DUPFD) take the lowest free fd: fd 1 or 2 when closed (`exec >&-`).
    unsigned onto = 0;
    if (nr == __NR_dup2 || nr == __NR_dup3) {
      int newfd = static_cast<int>(a[1]);
      if (oldfd != newfd && newfd >= 0 && newfd <= 2) onto = 1u << newfd;
    } else {
      std::string cur;
      for (int fd = 0; fd <= 2; fd++)
        if ((nr == __NR_dup || static_cast<int>(a[2]) <= fd) && !fdTarget(t.tid, fd, cur)) onto |= 1u << fd;
    }
    if ((onto & 1u) && !((proc.stdioStops | proc.uncapturedFds) & 1u)) {
      // Its reads do not stop: what it puts on fd 0 is taken as read, now (a builtin may
      // read it) and by whatever it execs (planStdio).
      proc.stdinSetHere = true;
      std::string src;
      if (fdTarget(t.tid, oldfd, src) && src != "/dev/null") emitStdinRead(t.tid, std::move(src), syscallName(nr));
    }
    onto &= ~1u;
    if (onto) {
      // A regular file it opened itself is an output like any other (`cmd > f` in a forked
      // shell: the exec that follows decides about read-back). One it was given at its exec
      // (`exec 1>&3`) may belong to someone outside: stops. So does the other stdio fd where
      // that one stops (`echo x >&2` with fd 2 a log file, fd 1 read back or /dev/null): its
      // bytes are that stream's. Everything else: stops.
      std::string src;
      fdTarget(t.tid, oldfd, src);
      char link[64];
      snprintf(link, sizeof link, "/proc/%d/fd/%d", t.tid, oldfd);
      struct stat st;
      auto given = proc.execFiles.find(oldfd);
      bool captured = (oldfd == 1 || oldfd == 2) && (proc.stdioStops & (1u << oldfd));
      // A pipe made inside the execution (`a | b` in a forked shell) is nobody's stdout yet:
      // the exec that follows decides (a relay, or stops); a builtin writing there before
      // it writes into the execution's inside, which is not captured.
      bool internalPipe = !captured && src.compare(0, 5, "pipe:") == 0 && !proc.execTargets.count(src);
      bool quiet = src == "/dev/null" || internalPipe ||
                   (!captured && stat(link, &st) == 0 && S_ISREG(st.st_mode) &&
                    (given == proc.execFiles.end() || given->second != src));
      if (!quiet) need = onto;
    }
  }
  need &= ~(proc.stdioStops | proc.uncapturedFds);
  if (need && injectStdioStops(t, need, Task::Pending::None)) return;
  resume(t);
}

void Tracer::emitReadbacks(pid_t tgid, Process& proc) {
  for (Readback& r : proc.readbacks) {
    Event& e = emitReadbackIo(tgid, r.fd, r.target, "file", "read-back", r.token);
    int64_t atNs = nowNs();
    struct stat st;
    off_t pos = lseek(r.dupFd, 0, SEEK_CUR);
    bool ok = pos >= 0 && fstat(r.dupFd, &st) == 0;
    // Someone else may have written the file meanwhile: a holder forked (a sibling step
    // beside it under `xargs -P`), a holder's write count moved, pcache's parent did.
    bool quiet = !r.tainted;
    for (const auto& [h, before] : r.holders) {
      uint64_t now;
      if (!writtenBytes(h, now) || now != before) quiet = false;
    }
    if (r.ownStdout && !outsideHoldersQuiet()) quiet = false;
    std::string prefix;
    if (ok && (!readRange(r.readFd, 0, r.prefix.size(), prefix) || prefix != r.prefix)) ok = false;
    // Then only an empty region says something: nobody wrote the file at all (it ends where
    // the region starts, as it did), so this execution's stdout is empty, whoever else held
    // it. Steps side by side with pcache's log as stdout, writing elsewhere, are this case.
    bool empty = ok && pos == r.start && st.st_size == r.start && r.sizeAtStart == r.start;
    if (!quiet && !empty) ok = false;
    int64_t end = ok ? pos : 0;
    int64_t wanted = end - r.start;
    if (readbackLimit_ >= 0 && wanted > readbackLimit_) wanted = readbackLimit_;
    // Bytes past where it stopped (written, then seeked back), a region that shrank, or bytes
    // before it changed: what it wrote is not one run from its start. `count` is the whole
    // region; `data` its first readbackLimit_ bytes when there is a limit.
    if (!ok || end < r.start || st.st_size > std::max<int64_t>(end, r.sizeAtStart) || st.st_size < end ||
        !readRange(r.readFd, r.start, static_cast<size_t>(wanted), e.data)) {
      e.data.clear();
      e.uncapturable = true;
    } else {
      e.hasData = true;
      e.count = end - r.start;
      // The file whole, and still as stat'ed before the read: its stamp goes with the bytes.
      struct stat after;
      if (r.start == 0 && st.st_size == end && static_cast<int64_t>(e.data.size()) == e.count && fstat(r.dupFd, &after) == 0 &&
          S_ISREG(st.st_mode) && after.st_dev == st.st_dev && after.st_ino == st.st_ino && after.st_size == st.st_size &&
          mtimeNsOf(after) == mtimeNsOf(st) && ctimeNsOf(after) == ctimeNsOf(st)) {
        e.hasStamp = true;
        e.stampDev = st.st_dev;
        e.stampIno = st.st_ino;
        e.stampSize = st.st_size;
        e.stampMtimeNs = mtimeNsOf(st);
        e.stampCtimeNs = ctimeNsOf(st);
        e.stampAtNs = atNs;
      }
    }
    close(r.dupFd);
    close(r.readFd);
    liveReadbacks_.erase(r.token);
  }
  proc.readbacks.clear();
}

void Tracer::dropReadbacks(Process& proc, int64_t token) {
  for (auto it = proc.readbacks.begin(); it != proc.readbacks.end();) {
    if (it->token != token) {
      ++it;
      continue;
    }
    close(it->dupFd);
    close(it->readFd);
    liveReadbacks_.erase(it->token);
    it = proc.readbacks.erase(it);
  }
}

}  // namespace pcache
