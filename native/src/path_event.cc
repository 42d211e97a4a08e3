#include "path_event.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "procfs.h"
#include "tracee_memory.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

namespace pcache {

namespace {

void setIdentity(Event& e, const struct stat& st) {
  e.hasIdentity = true;
  e.ino = st.st_ino;
  e.size = st.st_size;
  e.mtimeSec = st.st_mtim.tv_sec;
  e.mtimeNsec = st.st_mtim.tv_nsec;
  e.ctimeSec = st.st_ctim.tv_sec;
  e.ctimeNsec = st.st_ctim.tv_nsec;
}

}  // namespace

bool notifiable(const SyscallSpec& s) {
  switch (s.nr) {
    case __NR_open:
    case __NR_openat:  // read-only ones only: the filter checks the flags
    case __NR_stat:
    case __NR_lstat:
    case __NR_newfstatat:
    case __NR_statx:
    case __NR_access:
    case __NR_faccessat:
    case __NR_faccessat2:
    case __NR_readlink:
    case __NR_readlinkat:
    case __NR_getdents:
    case __NR_getdents64:
      return true;
    default:
      return false;
  }
}

bool buildPathEvent(pid_t tid, pid_t tgid, const SyscallSpec& s, const uint64_t* a, const BaseDirFn& baseDir,
                    PathCache* cache, Event& e) {
  e.kind = EventKind::Fs;
  e.pid = tid;
  e.op = s.op;
  int64_t flags = s.flagsArg >= 0 ? static_cast<int64_t>(a[s.flagsArg]) : 0;
  e.mode = s.modeArg >= 0 ? static_cast<int64_t>(a[s.modeArg]) : 0;
  bool follow = true;
  if (s.handling == Handling::Open || s.handling == Handling::Openat2) {
    if (s.nr == __NR_creat) flags = O_CREAT | O_WRONLY | O_TRUNC;
    if (s.handling == Handling::Openat2) {
      struct { uint64_t flags, mode, resolve; } how{0, 0, 0};
      size_t size = std::min<uint64_t>(a[3], sizeof how);
      readBytes(tid, a[2], &how, size);
      flags = static_cast<int64_t>(how.flags);
      e.mode = static_cast<int64_t>(how.mode);
    }
    // O_CREAT|O_EXCL never follows a final symlink; O_NOFOLLOW neither.
    follow = !(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL));
  } else {
    switch (s.follow) {
      case Follow::Always: follow = true; break;
      case Follow::Never: follow = false; break;
      case Follow::UnlessNoFollow: follow = !(flags & AT_SYMLINK_NOFOLLOW); break;
      case Follow::IfFollow: follow = (flags & AT_SYMLINK_FOLLOW) != 0; break;
    }
    if (s.nr == __NR_unlinkat && (flags & AT_REMOVEDIR)) e.op = "rmdir";
  }
  e.flags = flags;
  e.follow = follow;

  auto resolveArg = [&](int dirfdIdx, int pathIdx, bool followLast, std::string& outPath, char& outType,
                        bool& ok, bool identity) {
    ok = true;
    int64_t dirfd = dirfdIdx >= 0 ? static_cast<int64_t>(static_cast<int>(a[dirfdIdx])) : AT_FDCWD;
    std::string p;
    if (a[pathIdx] == 0) {
      // utimensat(fd, NULL, ...) and friends work on the dirfd itself.
      p = "";
    } else if (!readString(tid, a[pathIdx], p, 1 << 16)) {
      ok = false;
      return;
    }
    std::string base;
    if (p.empty()) {
      // AT_EMPTY_PATH (or a NULL path): the call is about the fd itself.
      if (!baseDir(dirfd, base)) {
        ok = false;
        return;
      }
      outPath = base;
      struct stat st;
      if (!base.empty() && base[0] == '/') {
        outType = lstat(base.c_str(), &st) == 0 ? fileTypeChar(st.st_mode) : '-';
        if (identity && outType == 'f') setIdentity(e, st);
      } else outType = base.rfind("pipe:", 0) == 0 ? 'p' : base.rfind("socket:", 0) == 0 ? 's' : 'c';
      return;
    }
    if (p[0] != '/' && !baseDir(dirfd, base)) {
      ok = false;
      return;
    }
    ResolvedPath r = resolvePath(tid, tgid, base, p, followLast, cache);
    outPath = std::move(r.path);
    outType = r.type;
    for (auto& l : r.links) e.links.push_back(std::move(l));
    if (identity && r.hasStat && r.type == 'f') setIdentity(e, r.st);
    if (identity) e.fdLink = r.fdLink;
  };

  bool ok = true;
  if (s.path >= 0) {
    resolveArg(s.dirfd, s.path, follow, e.path, e.type, ok, true);
  } else if (s.fdArg >= 0) {
    std::string target;
    int fd = static_cast<int>(a[s.fdArg]);
    if (fd == AT_FDCWD || !baseDir(fd, target)) return false;  // EBADF: the call fails, nothing observed
    e.path = target;
    struct stat st;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%d", tid, fd);
    e.type = (!target.empty() && target[0] == '/' && stat(p, &st) == 0) ? fileTypeChar(st.st_mode) : '-';
  }
  if (s.handling == Handling::Symlink) {
    readString(tid, a[0], e.linkTarget, 1 << 16);
    e.path2 = e.path;  // the link created (path and path2 both name it)
    e.type2 = e.type;
  } else if (s.path2 >= 0 && ok) {
    bool ok2;
    bool follow2 = false;  // rename/link never follow the destination
    resolveArg(s.dirfd2, s.path2, follow2, e.path2, e.type2, ok2, false);
    if (!ok2) ok = false;
  }
  // EFAULT or a bad dirfd: the syscall will fail the same way; said when a path is known.
  return ok || !e.path.empty();
}

}  // namespace pcache
