// Resolves a tracee's path the way the kernel does: relative to the cwd or a
// dirfd, `..` after symlinks, every symlink traversed reported (it is an input).
// Runs on the tracer thread while the tracee is stopped at syscall entry, so
// the result describes the state the syscall is about to see.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pcache {

struct ResolvedPath {
  std::string path;  // absolute and normalized; for a magic link to a pipe: "pipe:[ino]"
  char type = '-';   // f d l c b p s, or '-' when it does not exist
  std::vector<std::string> links;  // symlinks traversed, in order
  // The lstat of the final component (valid when type != '-'): taken while the tracee is
  // stopped before the call, so a change after it shows in ctime/mtime/size at the end.
  bool hasStat = false;
  struct stat st {};
  // The walk went through a descriptor's magic link (/dev/stdout is /proc/self/fd/1):
  // the descriptor's number when it is the tracee's own, kOtherFdLink for another
  // process's, -1 when no such link was crossed. What it named depends on that
  // descriptor, not on the path's text.
  int fdLink = -1;
};

constexpr int kOtherFdLink = -2;

char fileTypeChar(unsigned mode);

// What the walk learned about directories and symlinks met *before* the last
// component. Most paths cross the same few (/usr, /usr/lib, the /lib symlink ...),
// so remembering them saves an lstat (and a readlink) per component. The tracer
// clears it whenever a tracee may change the directory tree (rename, rmdir,
// unlink, symlink), at the syscall's entry and again at its exit.
class PathCache {
 public:
  struct Node {
    char type;           // 'd' or 'l'
    std::string target;  // for symlinks
  };
  const Node* find(const std::string& p) const {
    auto it = nodes_.find(p);
    return it == nodes_.end() ? nullptr : &it->second;
  }
  void put(const std::string& p, Node n) {
    if (nodes_.size() > 100000) nodes_.clear();
    nodes_.emplace(p, std::move(n));
  }
  void clear() { nodes_.clear(); }
  uint64_t hits = 0, misses = 0;

 private:
  std::unordered_map<std::string, Node> nodes_;
};

// base: the absolute directory a relative path starts from. cache may be null.
ResolvedPath resolvePath(pid_t tid, pid_t tgid, const std::string& base, const std::string& path,
                         bool followLast, PathCache* cache = nullptr);

}  // namespace pcache
