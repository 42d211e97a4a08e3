// The syscalls the tracer stops on, declared once. The seccomp filter and the
// dispatch in tracer.cc are both derived from this table; only irregular calls
// (open, exec, sockets, stdio transfers) have hand-written handling.
#pragma once

#include <cstdint>
#include <vector>

namespace pcache {

enum class Handling : uint8_t {
  PathOp,     // generic: dirfd/path (+ dirfd2/path2), reported as an fs event
  Open,       // open/openat/creat: flags decide follow and meaning
  Openat2,    // openat2: flags live in struct open_how
  Symlink,    // arg 0 is the link contents, not a path to resolve
  Exec,       // execve/execveat: ask JS before letting it run
  Socket,
  SockAddr,   // connect/bind/sendto: a sockaddr argument
  SendMsg,    // sendmsg: msghdr.msg_name
  Listen,     // listen/accept: a server inside the execution
  Umask,      // umask: part of every later exec's key
  Random,     // getrandom without GRND_NONBLOCK: random bytes asked for, like reading /dev/urandom
  ReadStdin,  // read family on fd 0 (filtered in BPF)
  WriteStd,   // write family on fd 1/2 (filtered in BPF): captured at syscall exit
  MoveData,   // sendfile/splice/tee/copy_file_range/vmsplice touching fd 0/1/2
  StdioFd,    // dup2/dup3 onto fd 1/2, close of fd 1/2: what fd 1/2 hold changes
  TermSize,   // ioctl(TIOCGWINSZ) only (filtered in BPF): a terminal's size, read at exit
  Cpus,       // sched_getaffinity: how many CPUs the process may run on (nproc, OpenMP)
  Unknown,    // not understood: makes the execution uncacheable
};

enum class Follow : uint8_t {
  Always,       // stat, access, chdir, truncate ...
  Never,        // lstat, unlink, rename, mkdir, readlink ...
  UnlessNoFollow,  // *at with AT_SYMLINK_NOFOLLOW in flagsArg
  IfFollow,     // linkat: only with AT_SYMLINK_FOLLOW
};

// Which argument the seccomp filter compares, so that only stdio traffic stops.
enum class FdFilter : uint8_t { None, Is0, Is1or2, Is0to2 };

struct SyscallSpec {
  int nr;
  const char* name;
  Handling handling;
  const char* op;      // FsOp name for fs events
  int8_t dirfd = -1;   // arg index of the dirfd, -1: AT_FDCWD
  int8_t path = -1;    // arg index of the path, -1: the call works on fdArg
  int8_t fdArg = -1;   // fd-based calls (fchmod, getdents ...)
  int8_t dirfd2 = -1, path2 = -1;
  int8_t flagsArg = -1;
  int8_t modeArg = -1;
  Follow follow = Follow::Always;
  FdFilter filter = FdFilter::None;
  int8_t filterArg = 0;
  // A second filter on another argument (splice/copy_file_range: in or out fd).
  FdFilter filter2 = FdFilter::None;
  int8_t filterArg2 = 0;
  // Do not stop when (arg[skipFlagArg] & skipFlagMask) != 0. Used to let fstat()
  // through: glibc implements it as fstatat(fd, "", AT_EMPTY_PATH), and the
  // metadata of an fd adds nothing to what its open() already told us.
  uint32_t skipFlagMask = 0;
  int8_t skipFlagArg = 0;
};

const std::vector<SyscallSpec>& syscallTable();

// The ioctl requests that stop (Handling::TermSize): asking a terminal's size, and changing
// what a terminal is beyond the execution (its settings, its size, input pushed into it).
struct TerminalRequest {
  uint32_t request;
  const char* name;
  bool changes;
};
const std::vector<TerminalRequest>& terminalRequests();
const TerminalRequest* findTerminalRequest(uint32_t request);
// nullptr when the tracer does not stop on nr.
const SyscallSpec* findSyscall(int nr);
// Highest syscall number this build knows; anything above stops as Unknown.
int highestKnownSyscall();
const char* syscallName(int nr);

}  // namespace pcache
