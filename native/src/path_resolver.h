// Resolves a tracee's path the way the kernel does: relative to the cwd or a
// dirfd, `..` after symlinks, every symlink traversed reported (it is an input).
// Runs on the tracer thread while the tracee is stopped at syscall entry, so
// the result describes the state the syscall is about to see.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pcache {

struct ResolvedPath {
  std::string path;  // absolute and normalized; for a magic link to a pipe: "pipe:[ino]"
  char type = '-';   // f d l c b p s, or '-' when it does not exist
  std::vector<std::string> links;  // symlinks traversed, in order
};

char fileTypeChar(unsigned mode);

// base: the absolute directory a relative path starts from.
ResolvedPath resolvePath(pid_t tid, pid_t tgid, const std::string& base, const std::string& path,
                         bool followLast);

}  // namespace pcache
