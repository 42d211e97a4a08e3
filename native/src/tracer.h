// The tracer: one dedicated thread forks the command, owns every ptrace call
// and turns stops into events. Decisions come back from JS through
// resolveExec/resolveExit (any thread), which queue them and wake this thread.
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <sys/user.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "events.h"
#include "notifier.h"
#include "path_resolver.h"
#include "relay.h"

namespace pcache {

struct ExecDecision {
  bool skip = false;
  int exitCode = 0;
  bool holdExit = false;
};

class Tracer {
 public:
  // sink: called on the tracer thread; takes ownership of the batch.
  using Sink = std::function<void(Batch*)>;

  Tracer(std::string file, std::vector<std::string> argv, std::vector<std::string> env, std::string cwd,
         Sink sink, std::function<void()> onThreadExit);
  // false: execs run without waiting for a decision (their requests still reach JS).
  void setAskExec(bool ask) { askExec_ = ask; }
  // Bytes of each read-back region read into its event (the rest only counted): what JS
  // keeps of a stream when it keeps only so much (pcache trace). Negative: all of it.
  void setReadbackLimit(int64_t bytes) { readbackLimit_ = bytes; }
  // Before start: only an exec whose execSignature is among `sigs` (or allowed later)
  // waits for a decision; any other runs at once with its exit held, and its request
  // reaches JS marked decided. Without a call every exec waits.
  void setExecFilter(const std::vector<uint64_t>& sigs);
  ~Tracer();

  // JS thread.
  void start();
  void join();
  void resolveExec(int64_t token, const ExecDecision& d);
  void resolveExit(int64_t token);
  void resolvePreimage(int64_t token);
  void signalRoot(int sig);
  // Signatures that may now have an entry (one was just published).
  void allowExecs(const std::vector<uint64_t>& sigs);
  std::map<std::string, uint64_t> stats();

 private:
  struct Task {
    pid_t tid = 0;
    pid_t tgid = 0;
    bool awaitingInitialStop = false;
    bool wantExitStop = false;  // resume with PTRACE_SYSCALL
    enum class Pending : uint8_t {
      None,
      ExecDecision,
      ExecRunning,
      WriteExit,
      CopyExit,
      ChdirExit,
      TreeChangeExit,
      ExitHold,
      Preimage,
      InjectExit,
      RelayOpenExit,  // the injected openat of the relay pipe (startRelay)
      RelayDupEntry,  // the injected dup2 onto fd 1, at its seccomp stop
      RelayDupExit,
      TermSizeExit,  // ioctl(TIOCGWINSZ): the size it got is in its buffer once it returns
      TermSetExit,   // an ioctl that changes a terminal: did it?
    } pending = Pending::None;
    int64_t token = 0;
    bool pendingHoldExit = false;
    bool exiting = false;  // stopped at its exit event (a leader that left by pthread_exit stays, a zombie)
    // stdio write capture
    int ioNr = 0;
    int ioFd = -1;
    uint64_t ioArg1 = 0, ioArg2 = 0;
    std::string ioTarget;
    bool treeChangeExit = false;  // clear the path cache at this syscall's exit
    // A write to a blocking pipe captured at entry, not yet known to have taken all its
    // bytes: only a signal can cut it short, and that shows at the signal-delivery-stop.
    bool writeInFlight = false;
    int64_t writeCount = 0;
    std::string writeTarget;
    uint64_t writeBatchSeq = 0;  // its event: batch (batchSeq_) and index there
    size_t writeEventIndex = 0;
    size_t writeDataStart = 0;  // where its bytes start in that event's data (events merge)
    int copySrcFd = -1;  // tracer-side fd on the source of copy_file_range/sendfile
    int64_t copyOffset = 0;
    // Stdio write stops being added (injectStdioStops): the call the task stopped in is
    // swapped for seccomp(2), then issued again; `afterReissue` is its state from there.
    unsigned injectFds = 0;  // decided at an exec entry, added once JS lets it run
    unsigned injectingFds = 0;
    user_regs_struct injectSaved{};
    bool reissue = false;
    int64_t reissueNr = -1;
    Pending afterReissue = Pending::None;
    // A pipe relay decided at an exec entry (planStdio), set up once JS lets it run.
    std::shared_ptr<RelayHub::Relay> relay;
  };
  // An execution whose regular-file stdout is read back at its end, not captured per write.
  struct Readback {
    int64_t token = 0;  // its exec request
    int fd = 1;
    int dupFd = -1;     // the tracee's open file description (pidfd_getfd): its offset
    int readFd = -1;    // the same file opened for reading
    int64_t start = 0;  // where its bytes begin
    int64_t sizeAtStart = 0;
    // The file's bytes before `start`: a write there (lseek back, pwrite, through any
    // duplicate of the fd) is outside the region a replay writes, so it must not change them.
    std::string prefix;
    std::string target;
    // Other processes holding the file when it started (a shell that redirected its own fd 1
    // and waits): their write counts (/proc/PID/io wchar) must not move while it runs.
    std::vector<std::pair<pid_t, uint64_t>> holders;
    bool tainted = false;  // a holder forked: a process outside may write the file
    bool ownStdout = false;  // pcache's own stdout: its outside holder must stay quiet too
  };
  // A process outside the traced tree that held pcache's stdout file when it was first read
  // back: pcache's parent, waiting for it (a shell that redirected around the command).
  struct OutsideHolder {
    pid_t pid = 0;
    uint64_t wchar = 0;    // /proc/PID/io: it wrote nothing since
    uint64_t cminflt = 0;  // /proc/PID/stat: it reaped no child since (a child faults at least once)
  };
  struct Process {
    std::set<pid_t> tasks;
    bool holdExit = false;
    bool exitHeld = false;  // its last exit was reported (at most once)
    int umask = 022;        // tracked through umask(2): /proc/PID/status is slow to read
    std::string cwd;        // cached readlink(/proc/PID/cwd); dropped when a chdir completes
    bool cwdValid = false;
    // fd 0's target at the last stdin read reported since the last exec: a repeat says
    // nothing new (the execution and its chain only change at exec), so it is not sent.
    std::string stdinReported;
    // fds (bit 1, bit 2) whose writes stop in this process, and bit 0 when its reads of fd 0
    // do: a filter, once added, stays and is inherited. `uncapturedFds`: adding it failed;
    // every execution it starts says so.
    unsigned stdioStops = 0;
    unsigned uncapturedFds = 0;
    // It put something on fd 0 itself since its fork (`a | b`, `b < f` in a forked shell):
    // what it execs is taken to read that, and gets no read stops for it ("stdin" in tracer.cc).
    bool stdinSetHere = false;
    // Its exec under way was planned so: the exec event is followed by a read of fd 0.
    bool judgeStdin = false;
    // Regular files open at its last exec, by fd: dup2 of one onto fd 1 writes outside.
    std::map<int, std::string> execFiles;
    // Every fd target its execution started with (its last exec, or its parent's): a pipe
    // not among them was made inside the execution.
    std::unordered_set<std::string> execTargets;
    std::vector<Readback> readbacks;
    // fd 1 read back while a write filter inherited from an ancestor still stops its writes:
    // those stops pass without a copy while that read-back (`passToken`, its exec request)
    // goes on and fd 1 still names `passTarget`. Its forked children carry it too.
    int64_t passToken = 0;
    std::string passTarget;
    // A relay for its exec that could not be set up after its request said so: the exec
    // event is followed by an uncapturable stdout for that request.
    int64_t relayFailedToken = 0;
  };

  void threadMain();
  bool spawnRoot(std::string& error);
  void loop();
  void handleStatus(pid_t tid, int status);
  void handleSeccompStop(Task& t);
  void handleSyscallExit(Task& t);
  void handleEventStop(Task& t, int event, int status);
  void handleNewTask(Task& parent, int event);
  bool isProcessExit(Task& t, Process& proc, int status);
  bool passesWrite(Task& t, int fd, const std::string& target);
  void holdExit(Task& t, int status);
  int64_t holdTask(Task& t, Task::Pending why);
  void handleTaskGone(pid_t tid, int status);
  void handlePathOp(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void handleExecEntry(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void handleSockAddr(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void handleWriteEntry(Task& t, int nr, const uint64_t* a);
  void handleMoveData(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void drainDecisions();
  // stdio write stops (tracer.cc)
  void planStdio(Task& t, int64_t token, bool& readback);
  bool injectStdioStops(Task& t, unsigned fds, Task::Pending after);
  void finishInject(Task& t, int64_t ret);
  void markUncaptured(Task& t, unsigned fds, bool now);
  void handleStdioFd(Task& t, int nr, const uint64_t* a);
  bool startReadback(Task& t, int fd, const std::string& target, int64_t token);
  bool otherHolders(pid_t tgid, int fd, const std::string& target, std::vector<pid_t>& holders);
  void emitReadbacks(pid_t tgid, Process& proc);
  void dropReadbacks(Process& proc, int64_t token);
  void checkWriteInFlight(Task& t);
  // True when the tracee was left stopped waiting for JS.
  bool requestPreimageIfNeeded(Task& t, const Event& e);
  bool noteRead(const Event& e);
  void resume(Task& t, int sig = 0);
  void emitUnknown(Task& t, int nr, const char* name, const std::string& detail);
  void emitUncapturable(Task& t, int fd, const char* syscall);
  Event& emitStdinRead(pid_t tid, std::string target, const char* syscall);
  Event& emitReadbackIo(pid_t pid, int fd, std::string target, const char* kind, const char* syscall, int64_t token);
  Event& emit(EventKind k, pid_t pid);
  Event& emitStdioWrite(Task& t, int64_t count);
  size_t appendStdioWrite(Task& t, std::string& piece, bool withData, int64_t count = 0);
  void flush();
  bool baseDir(Task& t, int64_t dirfd, std::string& out);
  bool cwdOf(Task& t, std::string& out);
  void noteExecFailed(Task& t);
  void armTimer(long micros);
  pid_t pollBriefly(int* status);

  std::string file_;
  std::vector<std::string> argv_, env_;
  std::string cwd_;
  Sink sink_;
  std::function<void()> onThreadExit_;  // tracer thread, last thing it does
  uint64_t batchStart_ = 0;
  uint64_t batchSeq_ = 0;  // counts flushes: which batch an event index belongs to
  bool askExec_ = true;
  int64_t readbackLimit_ = -1;
  const char* busyKind_ = "";  // PCACHE_TRACER_STATS: which kind of stop the busy time goes to
  bool execFilterOn_ = false;
  std::mutex execSigMu_;
  std::unordered_set<uint64_t> execSigs_;  // under execSigMu_
  std::thread thread_;
  std::atomic<pthread_t> threadHandle_{};
  std::atomic<bool> threadReady_{false};
  std::atomic<bool> threadStarted_{false};
  std::atomic<bool> answersQueued_{false};  // set with every queued decision/signal, cleared by drainDecisions
  int pollBackoff_ = 0;                     // waits left before pollBriefly polls again
  void* timer_ = nullptr;
  bool hasTimer_ = false;
  bool timerArmed_ = false;
  uint64_t timerDue_ = 0;  // monotonic micros of the armed timer's first expiry

  // Tracer-thread state.
  pid_t root_ = 0;
  int rootStatus_ = 0;
  bool rootReaped_ = false;
  std::unordered_map<pid_t, Task> tasks_;
  std::unordered_map<pid_t, Process> processes_;
  std::unordered_map<pid_t, int> unannounced_;  // new tids stopped before their parent's event
  std::unordered_map<int64_t, pid_t> tokens_;    // outstanding requests
  std::unordered_set<int64_t> liveReadbacks_;     // tokens of the read-backs under way
  int64_t nextToken_ = 1;
  Batch* batch_ = nullptr;

  // Shared with JS thread.
  std::mutex mu_;
  std::vector<std::pair<int64_t, ExecDecision>> execDecisions_;
  std::vector<int64_t> exitDecisions_;
  std::vector<int64_t> preimageDecisions_;
  std::unordered_set<std::string> readFiles_;  // regular files some tracee opened for reading
  std::unordered_set<std::string> listedDirs_;  // directories some tracee listed (getdents)
  PathCache pathCache_;
  void clearPathCaches();
  // The seccomp listener (notifier.h): wanted when the kernel has synchronous wake-ups and
  // PCACHE_NOTIFY is not 0; the child sends its fd number down listenerPipe_ before its
  // first exec, and acquireListener takes it at the first stop after that.
  bool notifyWanted_ = false;
  int listenerPipe_ = -1;
  std::string fatalError_;  // ends the run: reported in the done notice
  std::unique_ptr<Notifier> notifier_;
  void acquireListener();
  void drainNotified();
  std::vector<Event> notified_;  // drainNotified's scratch
  // tid -> tgid for the notifier thread (tasks_ is the tracer thread's own).
  std::mutex tgidMu_;
  std::unordered_map<pid_t, pid_t> tgidOf_;
  void noteTask(pid_t tid, pid_t tgid);
  void forgetTask(pid_t tid);
  pid_t tgidOf(pid_t tid);
  std::set<std::pair<uint64_t, uint64_t>> ownStdio_;  // dev/ino of pcache's own fd 1/2: read back only as below
  std::pair<uint64_t, uint64_t> ownStdout_{0, 0}, ownStderr_{0, 0};
  int ownStdoutAlone_ = -1;  // -1 not looked yet; 1 when nothing outside pcache can write its stdout file
  std::vector<OutsideHolder> ownStdoutHolders_;
  bool ownStdoutReadable(const std::string& target, std::pair<uint64_t, uint64_t> file);
  // Pipe relays (relay.h).
  std::unique_ptr<RelayHub> relayHub_;
  std::atomic<bool> relayWake_{false};
  bool relayEnabled_ = true;
  bool planRelay(Task& t, const std::string& target, int64_t token);
  void startRelay(Task& t);
  void relayFailed(Task& t);
  void reissueCall(Task& t, Task::Pending after);
  // What the relays read (readPipes: and what waits in their pipes, as an exit stop needs).
  void drainRelays(bool readPipes = true);
  bool outsideHoldersQuiet() const;
  Event lastFsEvent_;  // op and types of the last fs event (it may be flushed before we look)
  void sendPreimage(Task& t, std::vector<PreimageItem> items);
  std::vector<int> signals_;
  std::map<std::string, uint64_t> stats_;
  std::mutex statsMu_;
  std::map<std::string, uint64_t> localStats_;
};

}  // namespace pcache
