#include "tracee_memory.h"

#include <sys/uio.h>

#include <cstring>

namespace pcache {

namespace {
constexpr uint64_t kPage = 4096;

ssize_t readSome(pid_t tid, uint64_t addr, void* dst, size_t len) {
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(tid, &local, 1, &remote, 1, 0);
}
}  // namespace

bool readBytes(pid_t tid, uint64_t addr, void* dst, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = readSome(tid, addr + done, static_cast<char*>(dst) + done, len - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool readBytes(pid_t tid, uint64_t addr, size_t len, std::string& out) {
  out.resize(len);
  if (len == 0) return true;
  if (!readBytes(tid, addr, &out[0], len)) {
    out.clear();
    return false;
  }
  return true;
}

bool readString(pid_t tid, uint64_t addr, std::string& out, size_t maxLen) {
  out.clear();
  if (addr == 0) return false;
  char buf[kPage];
  while (out.size() < maxLen) {
    size_t chunk = kPage - (addr % kPage);  // never cross a page boundary in one read
    ssize_t n = readSome(tid, addr, buf, chunk);
    if (n <= 0) return false;
    const void* nul = memchr(buf, 0, static_cast<size_t>(n));
    if (nul) {
      out.append(buf, static_cast<const char*>(nul) - buf);
      return true;
    }
    out.append(buf, static_cast<size_t>(n));
    addr += static_cast<uint64_t>(n);
  }
  return false;
}

bool readStringArray(pid_t tid, uint64_t addr, std::vector<std::string>& out, size_t maxItems) {
  out.clear();
  if (addr == 0) return true;  // Linux accepts a NULL argv/envp as empty
  uint64_t ptrs[64];
  while (out.size() < maxItems) {
    size_t chunk = std::min<uint64_t>(64, (kPage - (addr % kPage)) / 8);
    if (chunk == 0) chunk = 1;
    ssize_t n = readSome(tid, addr, ptrs, chunk * 8);
    if (n < 8) return false;
    size_t count = static_cast<size_t>(n) / 8;
    for (size_t i = 0; i < count; i++) {
      if (ptrs[i] == 0) return true;
      std::string s;
      if (!readString(tid, ptrs[i], s, 1 << 20)) return false;
      out.push_back(std::move(s));
    }
    addr += count * 8;
  }
  return false;
}

}  // namespace pcache
