// The tracer: one dedicated thread forks the command, owns every ptrace call
// and turns stops into events. Decisions come back from JS through
// resolveExec/resolveExit (any thread), which queue them and wake this thread.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "events.h"
#include "path_resolver.h"

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
  ~Tracer();

  // JS thread.
  void start();
  void join();
  void resolveExec(int64_t token, const ExecDecision& d);
  void resolveExit(int64_t token);
  void resolvePreimage(int64_t token);
  void signalRoot(int sig);
  std::map<std::string, uint64_t> stats();

 private:
  struct Task {
    pid_t tid = 0;
    pid_t tgid = 0;
    bool awaitingInitialStop = false;
    bool wantExitStop = false;  // resume with PTRACE_SYSCALL
    enum class Pending : uint8_t { None, ExecDecision, ExecRunning, WriteExit, CopyExit, ChdirExit, TreeChangeExit, ExitHold, Preimage } pending =
        Pending::None;
    int64_t token = 0;
    bool pendingHoldExit = false;
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
  };
  struct Process {
    std::set<pid_t> tasks;
    bool holdExit = false;
    int umask = 022;        // tracked through umask(2): /proc/PID/status is slow to read
    std::string cwd;        // cached readlink(/proc/PID/cwd); dropped when a chdir completes
    bool cwdValid = false;
    // fd 0's target at the last stdin read reported since the last exec: a repeat says
    // nothing new (the execution and its chain only change at exec), so it is not sent.
    std::string stdinReported;
  };

  void threadMain();
  bool spawnRoot(std::string& error);
  void loop();
  void handleStatus(pid_t tid, int status);
  void handleSeccompStop(Task& t);
  void handleSyscallExit(Task& t);
  void handleEventStop(Task& t, int event, int status);
  void handleNewTask(Task& parent, int event);
  void handleTaskGone(pid_t tid, int status);
  void handlePathOp(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void handleExecEntry(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void handleSockAddr(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void handleWriteEntry(Task& t, int nr, const uint64_t* a);
  void handleMoveData(Task& t, const struct SyscallSpec& s, const uint64_t* a);
  void drainDecisions();
  void checkWriteInFlight(Task& t);
  // True when the tracee was left stopped waiting for JS.
  bool requestPreimageIfNeeded(Task& t, const Event& e);
  void resume(Task& t, int sig = 0);
  void emitUnknown(Task& t, int nr, const char* name, const std::string& detail);
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
  Event lastFsEvent_;  // op and types of the last fs event (it may be flushed before we look)
  void sendPreimage(Task& t, std::vector<PreimageItem> items);
  std::vector<int> signals_;
  std::map<std::string, uint64_t> stats_;
  std::mutex statsMu_;
  std::map<std::string, uint64_t> localStats_;
};

}  // namespace pcache
