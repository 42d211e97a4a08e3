#include "syscall_table.h"

#include <asm/ioctls.h>
#include <asm/termbits.h>  // struct termios2, for TCSETS2 and friends
#include <fcntl.h>
#include <sys/syscall.h>

#include <unordered_map>

#ifndef __x86_64__
#error "pcache's tracer supports x86_64 only for now"
#endif

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

namespace pcache {

namespace {

SyscallSpec P(int nr, const char* name, const char* op, int8_t dirfd, int8_t path, Follow follow,
              int8_t flagsArg = -1, int8_t modeArg = -1) {
  SyscallSpec s{nr, name, Handling::PathOp, op};
  s.dirfd = dirfd;
  s.path = path;
  s.follow = follow;
  s.flagsArg = flagsArg;
  s.modeArg = modeArg;
  return s;
}

SyscallSpec F(int nr, const char* name, const char* op, int8_t fdArg, int8_t modeArg = -1) {
  SyscallSpec s{nr, name, Handling::PathOp, op};
  s.fdArg = fdArg;
  s.follow = Follow::Always;
  s.modeArg = modeArg;
  return s;
}

SyscallSpec P2(int nr, const char* name, const char* op, int8_t dirfd, int8_t path, int8_t dirfd2,
               int8_t path2, Follow follow, int8_t flagsArg = -1) {
  SyscallSpec s = P(nr, name, op, dirfd, path, follow, flagsArg);
  s.dirfd2 = dirfd2;
  s.path2 = path2;
  return s;
}

SyscallSpec H(int nr, const char* name, Handling h, FdFilter filter = FdFilter::None,
              int8_t filterArg = 0, FdFilter filter2 = FdFilter::None, int8_t filterArg2 = 0) {
  SyscallSpec s{nr, name, h, ""};
  s.filter = filter;
  s.filterArg = filterArg;
  s.filter2 = filter2;
  s.filterArg2 = filterArg2;
  return s;
}

std::vector<SyscallSpec> build() {
  using F_ = Follow;
  std::vector<SyscallSpec> t;
  // open family
  {
    SyscallSpec s{__NR_open, "open", Handling::Open, "open"};
    s.path = 0; s.flagsArg = 1; s.modeArg = 2; t.push_back(s);
    s = {__NR_openat, "openat", Handling::Open, "open"};
    s.dirfd = 0; s.path = 1; s.flagsArg = 2; s.modeArg = 3; t.push_back(s);
    s = {__NR_creat, "creat", Handling::Open, "open"};
    s.path = 0; s.modeArg = 1; t.push_back(s);
    s = {__NR_openat2, "openat2", Handling::Openat2, "open"};
    s.dirfd = 0; s.path = 1; t.push_back(s);
  }
  // probes
  t.push_back(P(__NR_stat, "stat", "stat", -1, 0, F_::Always));
  t.push_back(P(__NR_lstat, "lstat", "stat", -1, 0, F_::Never));
  {
    SyscallSpec s = P(__NR_newfstatat, "newfstatat", "stat", 0, 1, F_::UnlessNoFollow, 3);
    s.skipFlagMask = AT_EMPTY_PATH;
    s.skipFlagArg = 3;
    t.push_back(s);
    s = P(__NR_statx, "statx", "stat", 0, 1, F_::UnlessNoFollow, 2);
    s.skipFlagMask = AT_EMPTY_PATH;
    s.skipFlagArg = 2;
    t.push_back(s);
  }
  t.push_back(P(__NR_statfs, "statfs", "stat", -1, 0, F_::Always));
  t.push_back(P(__NR_access, "access", "access", -1, 0, F_::Always, -1, 1));
  t.push_back(P(__NR_faccessat, "faccessat", "access", 0, 1, F_::Always, -1, 2));
  t.push_back(P(__NR_faccessat2, "faccessat2", "access", 0, 1, F_::UnlessNoFollow, 3, 2));
  t.push_back(P(__NR_readlink, "readlink", "readlink", -1, 0, F_::Never));
  t.push_back(P(__NR_readlinkat, "readlinkat", "readlink", 0, 1, F_::Never));
  t.push_back(F(__NR_getdents, "getdents", "getdents", 0));
  t.push_back(F(__NR_getdents64, "getdents64", "getdents", 0));
  t.push_back(P(__NR_chdir, "chdir", "chdir", -1, 0, F_::Always));
  t.push_back(F(__NR_fchdir, "fchdir", "chdir", 0));
  // changes
  t.push_back(P2(__NR_rename, "rename", "rename", -1, 0, -1, 1, F_::Never));
  t.push_back(P2(__NR_renameat, "renameat", "rename", 0, 1, 2, 3, F_::Never));
  t.push_back(P2(__NR_renameat2, "renameat2", "rename", 0, 1, 2, 3, F_::Never, 4));
  t.push_back(P2(__NR_link, "link", "link", -1, 0, -1, 1, F_::Never));
  t.push_back(P2(__NR_linkat, "linkat", "link", 0, 1, 2, 3, F_::IfFollow, 4));
  {
    SyscallSpec s{__NR_symlink, "symlink", Handling::Symlink, "symlink"};
    s.path = 1; t.push_back(s);
    s = {__NR_symlinkat, "symlinkat", Handling::Symlink, "symlink"};
    s.dirfd = 1; s.path = 2; t.push_back(s);
  }
  t.push_back(P(__NR_unlink, "unlink", "unlink", -1, 0, F_::Never));
  t.push_back(P(__NR_unlinkat, "unlinkat", "unlink", 0, 1, F_::Never, 2));
  t.push_back(P(__NR_rmdir, "rmdir", "rmdir", -1, 0, F_::Never));
  t.push_back(P(__NR_mkdir, "mkdir", "mkdir", -1, 0, F_::Never, -1, 1));
  t.push_back(P(__NR_mkdirat, "mkdirat", "mkdir", 0, 1, F_::Never, -1, 2));
  t.push_back(P(__NR_mknod, "mknod", "mknod", -1, 0, F_::Never, -1, 1));
  t.push_back(P(__NR_mknodat, "mknodat", "mknod", 0, 1, F_::Never, -1, 2));
  t.push_back(P(__NR_truncate, "truncate", "truncate", -1, 0, F_::Always, -1, 1));  // length as mode
  t.push_back(F(__NR_ftruncate, "ftruncate", "truncate", 0, 1));  // length as mode
  t.push_back(P(__NR_chmod, "chmod", "chmod", -1, 0, F_::Always, -1, 1));
  t.push_back(F(__NR_fchmod, "fchmod", "chmod", 0, 1));
  t.push_back(P(__NR_fchmodat, "fchmodat", "chmod", 0, 1, F_::Always, -1, 2));
  t.push_back(P(__NR_fchmodat2, "fchmodat2", "chmod", 0, 1, F_::UnlessNoFollow, 3, 2));
  t.push_back(P(__NR_chown, "chown", "chown", -1, 0, F_::Always));
  t.push_back(P(__NR_lchown, "lchown", "chown", -1, 0, F_::Never));
  t.push_back(F(__NR_fchown, "fchown", "chown", 0));
  t.push_back(P(__NR_fchownat, "fchownat", "chown", 0, 1, F_::UnlessNoFollow, 4));
  t.push_back(P(__NR_utime, "utime", "utimes", -1, 0, F_::Always));
  t.push_back(P(__NR_utimes, "utimes", "utimes", -1, 0, F_::Always));
  t.push_back(P(__NR_futimesat, "futimesat", "utimes", 0, 1, F_::Always));
  t.push_back(P(__NR_utimensat, "utimensat", "utimes", 0, 1, F_::UnlessNoFollow, 3));
  t.push_back(P(__NR_getxattr, "getxattr", "xattr-read", -1, 0, F_::Always));
  t.push_back(P(__NR_lgetxattr, "lgetxattr", "xattr-read", -1, 0, F_::Never));
  t.push_back(F(__NR_fgetxattr, "fgetxattr", "xattr-read", 0));
  t.push_back(P(__NR_listxattr, "listxattr", "xattr-read", -1, 0, F_::Always));
  t.push_back(P(__NR_llistxattr, "llistxattr", "xattr-read", -1, 0, F_::Never));
  t.push_back(F(__NR_flistxattr, "flistxattr", "xattr-read", 0));
  t.push_back(P(__NR_setxattr, "setxattr", "xattr-write", -1, 0, F_::Always));
  t.push_back(P(__NR_lsetxattr, "lsetxattr", "xattr-write", -1, 0, F_::Never));
  t.push_back(F(__NR_fsetxattr, "fsetxattr", "xattr-write", 0));
  t.push_back(P(__NR_removexattr, "removexattr", "xattr-write", -1, 0, F_::Always));
  t.push_back(P(__NR_lremovexattr, "lremovexattr", "xattr-write", -1, 0, F_::Never));
  t.push_back(F(__NR_fremovexattr, "fremovexattr", "xattr-write", 0));
  // processes
  t.push_back(H(__NR_execve, "execve", Handling::Exec));
  t.push_back(H(__NR_execveat, "execveat", Handling::Exec));
  // the outside world
  t.push_back(H(__NR_socket, "socket", Handling::Socket));
  t.push_back(H(__NR_connect, "connect", Handling::SockAddr));
  t.push_back(H(__NR_bind, "bind", Handling::SockAddr));
  t.push_back(H(__NR_sendto, "sendto", Handling::SockAddr));
  t.push_back(H(__NR_sendmsg, "sendmsg", Handling::SendMsg));
  t.push_back(H(__NR_sendmmsg, "sendmmsg", Handling::SendMsg));
  t.push_back(H(__NR_listen, "listen", Handling::Listen));
  t.push_back(H(__NR_umask, "umask", Handling::Umask));
  {
    // glibc (malloc), Python (hash seed) and others seed with getrandom(GRND_NONBLOCK) in every
    // process; those do not stop. A blocking request (shuf, os.urandom, arc4random) does.
    SyscallSpec s = H(__NR_getrandom, "getrandom", Handling::Random);
    s.skipFlagMask = 1;  // GRND_NONBLOCK
    s.skipFlagArg = 2;
    t.push_back(s);
  }
  // stdio traffic: only fds 0/1/2 stop (the filter compares the fd argument)
  t.push_back(H(__NR_read, "read", Handling::ReadStdin, FdFilter::Is0, 0));
  t.push_back(H(__NR_readv, "readv", Handling::ReadStdin, FdFilter::Is0, 0));
  t.push_back(H(__NR_pread64, "pread64", Handling::ReadStdin, FdFilter::Is0, 0));
  t.push_back(H(__NR_preadv, "preadv", Handling::ReadStdin, FdFilter::Is0, 0));
  t.push_back(H(__NR_preadv2, "preadv2", Handling::ReadStdin, FdFilter::Is0, 0));
  // Mapping stdin reads it too (python's mmap.mmap(0, ...)); anonymous maps pass fd -1.
  t.push_back(H(__NR_mmap, "mmap", Handling::ReadStdin, FdFilter::Is0, 4));
  t.push_back(H(__NR_write, "write", Handling::WriteStd, FdFilter::Is1or2, 0));
  t.push_back(H(__NR_writev, "writev", Handling::WriteStd, FdFilter::Is1or2, 0));
  t.push_back(H(__NR_pwrite64, "pwrite64", Handling::WriteStd, FdFilter::Is1or2, 0));
  t.push_back(H(__NR_pwritev, "pwritev", Handling::WriteStd, FdFilter::Is1or2, 0));
  t.push_back(H(__NR_pwritev2, "pwritev2", Handling::WriteStd, FdFilter::Is1or2, 0));
  // kernel-side copies: out fd 1/2 cannot be captured; in fd 0 is a stdin read
  t.push_back(H(__NR_sendfile, "sendfile", Handling::MoveData, FdFilter::Is1or2, 0, FdFilter::Is0, 1));
  t.push_back(H(__NR_splice, "splice", Handling::MoveData, FdFilter::Is1or2, 2, FdFilter::Is0, 0));
  t.push_back(H(__NR_tee, "tee", Handling::MoveData, FdFilter::Is1or2, 1, FdFilter::Is0, 0));
  t.push_back(H(__NR_copy_file_range, "copy_file_range", Handling::MoveData, FdFilter::Is1or2, 2,
                FdFilter::Is0, 0));
  t.push_back(H(__NR_vmsplice, "vmsplice", Handling::MoveData, FdFilter::Is0to2, 0));
  // A process without write stops on fd 1/2 (tracer.cc, "stdio write stops") gets them
  // before fd 1/2 come to hold something it must capture; one without read stops on fd 0
  // ("stdin") is told it redirected its stdin.
  t.push_back(H(__NR_dup2, "dup2", Handling::StdioFd, FdFilter::Is0to2, 1));
  t.push_back(H(__NR_dup3, "dup3", Handling::StdioFd, FdFilter::Is0to2, 1));
  // dup/fcntl(F_DUPFD) land on the lowest free fd: 0-2 after a close (fcntl stops only for
  // F_DUPFD/F_DUPFD_CLOEXEC from 0-2, seccomp_filter.cc).
  t.push_back(H(__NR_dup, "dup", Handling::StdioFd));
  t.push_back(H(__NR_fcntl, "fcntl", Handling::StdioFd));
  // A terminal's size shapes what `ls`, a progress bar or a pager writes: an input of the
  // execution that asks. Changing a terminal (stty) is an effect no replay makes. Only
  // terminalRequests() stop (seccomp_filter.cc).
  t.push_back(H(__NR_ioctl, "ioctl", Handling::TermSize));
  // nproc, OpenMP and BLAS runtimes size themselves by the CPUs they may use: an input.
  t.push_back(H(__NR_sched_getaffinity, "sched_getaffinity", Handling::Cpus));
  // Not understood: each makes the execution uncacheable (fail closed).
  const std::pair<int, const char*> unknown[] = {
      {__NR_chroot, "chroot"}, {__NR_pivot_root, "pivot_root"}, {__NR_mount, "mount"},
      {__NR_umount2, "umount2"}, {__NR_name_to_handle_at, "name_to_handle_at"},
      {__NR_open_by_handle_at, "open_by_handle_at"}, {__NR_io_uring_setup, "io_uring_setup"},
      {__NR_fanotify_init, "fanotify_init"}, {__NR_fanotify_mark, "fanotify_mark"},
      {__NR_inotify_add_watch, "inotify_add_watch"}, {__NR_ptrace, "ptrace"},
      {__NR_process_vm_writev, "process_vm_writev"}, {__NR_quotactl, "quotactl"},
      {__NR_acct, "acct"}, {__NR_swapon, "swapon"}, {__NR_swapoff, "swapoff"},
      {__NR_open_tree, "open_tree"}, {__NR_move_mount, "move_mount"}, {__NR_fsopen, "fsopen"},
      {__NR_fsconfig, "fsconfig"}, {__NR_fsmount, "fsmount"}, {__NR_fspick, "fspick"},
      {__NR_mount_setattr, "mount_setattr"}, {__NR_mq_open, "mq_open"},
      {__NR_mq_unlink, "mq_unlink"}, {__NR_shmget, "shmget"}, {__NR_msgget, "msgget"},
      {__NR_init_module, "init_module"}, {__NR_finit_module, "finit_module"},
      {__NR_delete_module, "delete_module"}, {__NR_settimeofday, "settimeofday"},
      {__NR_clock_settime, "clock_settime"}, {__NR_sethostname, "sethostname"},
      {__NR_setdomainname, "setdomainname"}, {__NR_uselib, "uselib"},
      {__NR_lookup_dcookie, "lookup_dcookie"}, {__NR_kexec_load, "kexec_load"},
      {__NR_kexec_file_load, "kexec_file_load"}, {__NR_reboot, "reboot"},
      {__NR_userfaultfd, "userfaultfd"},
  };
  for (const auto& u : unknown) t.push_back(H(u.first, u.second, Handling::Unknown));
  return t;
}

}  // namespace

const std::vector<TerminalRequest>& terminalRequests() {
  static const std::vector<TerminalRequest> requests = {
      {TIOCGWINSZ, "TIOCGWINSZ", false}, {TIOCSWINSZ, "TIOCSWINSZ", true}, {TCSETS, "TCSETS", true},
      {TCSETSW, "TCSETSW", true},       {TCSETSF, "TCSETSF", true},       {TCSETA, "TCSETA", true},
      {TCSETAW, "TCSETAW", true},       {TCSETAF, "TCSETAF", true},       {TCSETS2, "TCSETS2", true},
      {TCSETSW2, "TCSETSW2", true},     {TCSETSF2, "TCSETSF2", true},     {TIOCSTI, "TIOCSTI", true},
  };
  return requests;
}

const TerminalRequest* findTerminalRequest(uint32_t request) {
  for (const TerminalRequest& r : terminalRequests())
    if (r.request == request) return &r;
  return nullptr;
}

const std::vector<SyscallSpec>& syscallTable() {
  static const std::vector<SyscallSpec> table = build();
  return table;
}

const SyscallSpec* findSyscall(int nr) {
  static const std::unordered_map<int, const SyscallSpec*> byNr = [] {
    std::unordered_map<int, const SyscallSpec*> m;
    for (const auto& s : syscallTable()) m[s.nr] = &s;
    return m;
  }();
  auto it = byNr.find(nr);
  return it == byNr.end() ? nullptr : it->second;
}

// Syscalls after mseal (462) include path-based xattr calls; a syscall newer than what this build knows may
// touch files in ways we cannot see, so the filter stops on it (Unknown).
int highestKnownSyscall() { return 462; }

const char* syscallName(int nr) {
  const SyscallSpec* s = findSyscall(nr);
  return s ? s->name : "?";
}

}  // namespace pcache
