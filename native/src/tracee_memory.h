// Reading a stopped tracee's memory (process_vm_readv), page by page so a
// string that ends just before an unmapped page is still read.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pcache {

// Reads a NUL-terminated string; false when the address is unreadable or the
// string is longer than maxLen (then `out` holds the prefix).
bool readString(pid_t tid, uint64_t addr, std::string& out, size_t maxLen = 1 << 16);
// Reads exactly len bytes; false on a short read.
bool readBytes(pid_t tid, uint64_t addr, void* dst, size_t len);
bool readBytes(pid_t tid, uint64_t addr, size_t len, std::string& out);
// Writes exactly len bytes into a stopped tracee (process_vm_writev); false on a short write.
bool writeBytes(pid_t tid, uint64_t addr, const void* src, size_t len);
// Reads a NULL-terminated array of string pointers (argv, envp).
bool readStringArray(pid_t tid, uint64_t addr, std::vector<std::string>& out, size_t maxItems = 1 << 16);

}  // namespace pcache
