// Which interpreter the kernel runs for a file it executes: binfmt_script's `#!` line and
// binfmt_elf's PT_INTERP. The kernel reads these files itself, with no call the tracee
// makes, so the tracer reads them at the exec's entry (Tracer::execImplied), while the
// tracee waits and the files are in the state the exec will see.
#pragma once

#include <cstddef>
#include <string>

namespace pcache {

// The interpreter named by a `#!` line in the first bytes of a file, like binfmt_script:
// blanks after `#!` skipped, the name ends at the first blank, NUL or newline.
bool shebangInterpreter(const char* head, size_t n, std::string& out);
// PT_INTERP of an ELF file (32 or 64 bit, either byte order) open at fd, whose first
// headLen bytes are already in head; false when it is not ELF or is statically linked.
bool elfInterpreter(int fd, const char* head, size_t headLen, std::string& out);

}  // namespace pcache
