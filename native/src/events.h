// Events the tracer thread produces and the JS thread turns into objects.
// The layout mirrors src/trace/native.ts; bump kNativeEventVersion with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pcache {

constexpr int kNativeEventVersion = 2;
// Captured bytes of at least this size travel by handing the string over (tracer.cc
// drainRelays, addon.cc dataBuffer); smaller ones are copied, which keeps the sender's room.
constexpr size_t kDataHandOverBytes = 64 * 1024;

enum class EventKind : uint8_t { Fs, Spawn, Exec, Exit, Io, Net, Unknown };

struct FdSnapshot {
  int fd;
  std::string target;
  const char* kind;
  int64_t pos;
  int64_t flags;
};

// One record for every kind; unused fields stay empty. Plain data so a batch can
// be filled on the tracer thread and read on the JS thread without locking.
struct Event {
  EventKind kind = EventKind::Unknown;
  int pid = 0;
  // fs
  const char* op = "";  // static string from the syscall table
  std::string path, path2, linkTarget;
  int64_t flags = 0;
  int64_t mode = 0;
  bool follow = true;
  char type = '-', type2 = 0;
  std::vector<std::string> links;
  bool hasResult = false;
  int64_t result = 0;
  // A regular file's identity when the tracee stopped before the call (see ResolvedPath::st).
  bool hasIdentity = false;
  uint64_t ino = 0;
  int64_t size = 0, mtimeSec = 0, mtimeNsec = 0, ctimeSec = 0, ctimeNsec = 0;
  int64_t token = 0;  // execve-probe: the failed request's token (0 if none)
  int fdLink = -1;    // see ResolvedPath::fdLink (path only)
  // spawn
  int parent = 0;
  bool thread = false;
  int tgid = 0;
  // exec: the fds the new program really has (close-on-exec ones are gone)
  int formerTid = 0;
  std::vector<FdSnapshot> fds;
  // exit
  bool processExit = false;
  bool hasCode = false, hasSignal = false;
  int code = 0, signal = 0;
  double time = 0;
  // io
  int fd = -1;
  char dir = 'w';
  std::string target;
  const char* fdKind = "other";
  std::string data;  // captured bytes (writes)
  bool hasData = false;
  int64_t count = 0;
  bool uncapturable = false;
  // A read-back (tracer.cc, "stdio write stops"): the bytes an execution's regular-file
  // stdout gained while it ran, read at its end; `token` names that execution's exec.
  bool readback = false;
  // A read-back that is its file whole (region from offset 0 to the end, every byte read):
  // the file's stamp, taken before the bytes were read and unchanged after, and the wall
  // clock (ns) before that stat, so JS can know the file's digest without reading it again.
  bool hasStamp = false;
  uint64_t stampDev = 0, stampIno = 0;
  int64_t stampSize = 0, stampMtimeNs = 0, stampCtimeNs = 0, stampAtNs = 0;
  const char* syscall = "";
  // net
  const char* netOp = "";
  int family = 0;
  int socktype = 0;
  std::string address;
  // unknown
  int nr = -1;
  std::string detail;
};


// A file the kernel reads to run an exec (the executable, each interpreter) or a symlink on
// the way to one: execImpliedInputs in exec_chain.h.
struct ImpliedInput {
  std::string path;
  const char* kind;  // "content", "metadata" (a symlink traversed) or "absent"
};

struct ExecRequest {
  int64_t token;
  // For a request nobody waits for: how many of the batch's events came before it.
  size_t eventIndex = 0;
  int pid, tgid;
  std::string path;
  std::vector<std::string> links, argv, env;
  std::vector<ImpliedInput> implied;
  std::string cwd;
  int umask;
  int cpus = -1;  // how many CPUs it may run on (sched_getaffinity), -1 if unknown
  std::vector<FdSnapshot> fds;
  double time;
  // Its stdout is read back from the file at its end instead of captured write by write.
  bool readback = false;
  // execSignature(path, argv): what the exec filter knows executions by.
  uint64_t execSig = 0;
  // Let run at once, its exit held (the exec filter knew no entry that could match): JS
  // records it and has nothing to decide.
  bool decided = false;
};

struct ExitRequest {
  int64_t token;
  int pid;
  int tid;  // the task held: the last one of pid, or one ending the whole process (exit_group)
  bool hasCode, hasSignal;
  int code, signal;
};

// Sent before a tracee changes a regular file that some tracee read (or that it
// opens for update): JS records the file's state before the change, because an
// input must be keyed on what was read, not on what the file became.
struct PreimageItem {
  std::string path;
  const char* kind;  // "content" (a file's bytes) or "dirlist" (a directory's entries)
};

struct PreimageRequest {
  int64_t token;
  int pid;
  std::vector<PreimageItem> items;
};

struct DoneNotice {
  bool hasCode = false, hasSignal = false;
  int code = 0, signal = 0;
  std::string error;
};

// What crosses to JS in one ThreadSafeFunction call: events first, then at most
// one request or the final notice (a request always flushes what came before it).
struct Batch {
  // Exec requests nobody waits for (tracing without a cache), delivered in order among `events`.
  std::vector<ExecRequest> execNotices;
  std::vector<Event> events;
  bool hasExec = false;
  ExecRequest exec;
  bool hasExit = false;
  ExitRequest exit;
  bool hasPreimage = false;
  PreimageRequest preimage;
  bool done = false;
  DoneNotice doneNotice;
};

}  // namespace pcache
