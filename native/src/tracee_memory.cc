#include "tracee_memory.h"

#include <sys/uio.h>

#include <algorithm>
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

bool writeBytes(pid_t tid, uint64_t addr, const void* src, size_t len) {
  iovec local{const_cast<void*>(src), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_writev(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
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
  std::vector<uint64_t> ptrs;
  uint64_t chunk[64];
  for (bool end = false; !end;) {
    size_t n = std::min<uint64_t>(64, (kPage - (addr % kPage)) / 8);
    if (n == 0) n = 1;
    ssize_t got = readSome(tid, addr, chunk, n * 8);
    if (got < 8) return false;
    for (size_t i = 0; i < static_cast<size_t>(got) / 8; i++) {
      if (chunk[i] == 0) {
        end = true;
        break;
      }
      ptrs.push_back(chunk[i]);
      if (ptrs.size() > maxItems) return false;
    }
    addr += static_cast<uint64_t>(got / 8 * 8);
  }
  // One process_vm_readv for many strings: each remote piece stops at its
  // page end (a fault ends the whole read), most strings fit in the first piece.
  constexpr size_t kBatch = 256;
  constexpr size_t kPiece = 256;
  out.resize(ptrs.size());
  std::vector<char> buf(kBatch * kPiece);
  for (size_t base = 0; base < ptrs.size(); base += kBatch) {
    size_t count = std::min(kBatch, ptrs.size() - base);
    iovec local[kBatch], remote[kBatch];
    for (size_t i = 0; i < count; i++) {
      uint64_t p = ptrs[base + i];
      size_t len = std::min<uint64_t>(kPiece, kPage - (p % kPage));
      local[i] = {&buf[i * kPiece], len};
      remote[i] = {reinterpret_cast<void*>(p), len};
    }
    ssize_t got = process_vm_readv(tid, local, count, remote, count, 0);
    size_t consumed = 0;
    for (size_t i = 0; i < count; i++) {
      std::string& s = out[base + i];
      size_t len = local[i].iov_len;
      bool have = got > 0 && consumed + len <= static_cast<size_t>(got);
      consumed += len;
      const char* piece = &buf[i * kPiece];
      const void* nul = have ? memchr(piece, 0, len) : nullptr;
      if (nul) {
        s.assign(piece, static_cast<const char*>(nul) - piece);
      } else if (!readString(tid, ptrs[base + i], s, 1 << 20)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace pcache
