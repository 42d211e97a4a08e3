// Which interpreter the kernel runs for a file it executes: binfmt_script's `#!` line and
// binfmt_elf's PT_INTERP. The kernel reads these files itself, with no call the tracee
// makes, so the tracer reads them at the exec's entry (handleExecEntry in tracer.cc), while the
// tracee waits and the files are in the state the exec will see.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "events.h"
#include "path_resolver.h"

namespace pcache {

// The interpreter named by a `#!` line in the first bytes of a file, like binfmt_script:
// blanks after `#!` skipped, the name ends at the first blank, NUL or newline.
bool shebangInterpreter(const char* head, size_t n, std::string& out);
// PT_INTERP of an ELF file (32 or 64 bit, either byte order) open at fd, whose first
// headLen bytes are already in head; false when it is not ELF or is statically linked.
bool elfInterpreter(int fd, const char* head, size_t headLen, std::string& out);

// The inputs the kernel reads when it runs `exe` (resolved already), with no call of the
// tracee's to show them: the file, each `#!` interpreter with the symlinks on the way, and
// the final binary's ELF program interpreter, in the order the kernel reads them. Relative
// interpreter names resolve against `cwd`, /proc/self against tid. A file that cannot be
// read (execute-only, vanished) contributes only itself.
void execImpliedInputs(pid_t tid, pid_t tgid, const std::string& exe, const std::string& cwd, PathCache* cache,
                       std::vector<ImpliedInput>& out);

}  // namespace pcache
