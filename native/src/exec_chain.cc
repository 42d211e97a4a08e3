#include "exec_chain.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace pcache {

namespace {
constexpr size_t kShebangMax = 256;  // BINPRM_BUF_SIZE
constexpr uint32_t kPtInterp = 3;
constexpr size_t kPhdrsMax = 65536;  // binfmt_elf refuses larger program header tables
constexpr size_t kInterpMax = 4096;  // PATH_MAX

// Reads from the file's first bytes where they cover the range (a dynamic binary's program
// headers and interpreter name lie in its first kilobyte), else from the file.
bool readAt(int fd, const char* head, size_t headLen, void* buf, size_t len, uint64_t pos, size_t& got) {
  if (pos < headLen && len <= headLen - pos) {
    memcpy(buf, head + pos, len);
    got = len;
    return true;
  }
  got = 0;
  while (got < len) {
    ssize_t n = pread(fd, static_cast<char*>(buf) + got, len - got, static_cast<off_t>(pos + got));
    if (n < 0) return false;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return true;
}

struct Reader {
  const unsigned char* b;
  bool le;
  uint64_t u16(size_t o) const { return le ? (b[o] | b[o + 1] << 8) : (b[o] << 8 | b[o + 1]); }
  uint64_t u32(size_t o) const {
    uint64_t v = 0;
    for (int i = 0; i < 4; i++) v |= static_cast<uint64_t>(b[o + (le ? i : 3 - i)]) << (8 * i);
    return v;
  }
  uint64_t u64(size_t o) const {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= static_cast<uint64_t>(b[o + (le ? i : 7 - i)]) << (8 * i);
    return v;
  }
};
}  // namespace

bool shebangInterpreter(const char* head, size_t n, std::string& out) {
  if (n < 2 || head[0] != '#' || head[1] != '!') return false;
  size_t end = n < kShebangMax ? n : kShebangMax;
  size_t i = 2;
  while (i < end && (head[i] == ' ' || head[i] == '\t')) i++;
  size_t j = i;
  while (j < end && head[j] != ' ' && head[j] != '\t' && head[j] != '\n' && head[j] != '\0') j++;
  if (j == i) return false;
  out.assign(head + i, j - i);
  return true;
}

bool elfInterpreter(int fd, const char* head, size_t headLen, std::string& out) {
  unsigned char eh[64];
  size_t n;
  if (!readAt(fd, head, headLen, eh, sizeof eh, 0, n)) return false;
  if (n < 52 || memcmp(eh, "\x7f" "ELF", 4) != 0) return false;
  bool is64 = eh[4] == 2;
  if (!is64 && eh[4] != 1) return false;
  if (eh[5] != 1 && eh[5] != 2) return false;
  if (is64 && n < 64) return false;
  Reader h{eh, eh[5] == 1};
  uint64_t phoff = is64 ? h.u64(32) : h.u32(28);
  uint64_t phentsize = is64 ? h.u16(54) : h.u16(42);
  uint64_t phnum = is64 ? h.u16(56) : h.u16(44);
  uint64_t minEnt = is64 ? 56 : 32;
  if (phoff == 0 || phnum == 0 || phentsize < minEnt || phentsize * phnum > kPhdrsMax) return false;
  std::vector<unsigned char> table(phentsize * phnum);
  if (!readAt(fd, head, headLen, table.data(), table.size(), phoff, n)) return false;
  Reader t{table.data(), h.le};
  for (uint64_t k = 0; k < phnum; k++) {
    size_t o = k * phentsize;
    if (o + minEnt > n) break;
    if (t.u32(o) != kPtInterp) continue;
    uint64_t off = is64 ? t.u64(o + 8) : t.u32(o + 4);
    uint64_t size = is64 ? t.u64(o + 32) : t.u32(o + 16);
    if (size == 0 || size > kInterpMax) return false;
    std::string raw(size, '\0');
    if (!readAt(fd, head, headLen, &raw[0], size, off, n)) return false;
    raw.resize(n);
    size_t nul = raw.find('\0');
    if (nul != std::string::npos) raw.resize(nul);
    if (raw.empty()) return false;
    out = raw;
    return true;
  }
  return false;
}

void execImpliedInputs(pid_t tid, pid_t tgid, const std::string& exe, const std::string& cwd, PathCache* cache,
                       std::vector<ImpliedInput>& out) {
  constexpr int kMaxDepth = 5;  // binfmt's recursion limit
  auto add = [&out](const std::string& p, const char* kind) {
    for (const ImpliedInput& i : out)
      if (i.path == p && strcmp(i.kind, kind) == 0) return;
    out.push_back({p, kind});
  };
  std::string file = exe;
  add(file, "content");
  for (int depth = 0; depth < kMaxDepth; depth++) {
    int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return;
    char head[1024];  // the #! line, or an ELF header, program headers and interpreter name
    ssize_t n = pread(fd, head, sizeof head, 0);
    std::string next;
    if (n < 0 || !shebangInterpreter(head, static_cast<size_t>(n), next)) {
      std::string interp;
      bool elf = n >= 0 && elfInterpreter(fd, head, static_cast<size_t>(n), interp);
      close(fd);
      if (!elf) return;
      ResolvedPath r = resolvePath(tid, tgid, cwd, interp, true, cache);
      for (const std::string& l : r.links) add(l, "metadata");
      add(r.path, r.type == '-' ? "absent" : "content");
      return;
    }
    close(fd);
    ResolvedPath r = resolvePath(tid, tgid, cwd, next, true, cache);
    for (const std::string& l : r.links) add(l, "metadata");
    if (r.type == '-') {
      add(r.path, "absent");
      return;
    }
    add(r.path, "content");
    file = r.path;
  }
}

}  // namespace pcache
