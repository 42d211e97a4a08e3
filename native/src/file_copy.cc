// pcache_fileops: the store's one file-system mechanism that Node cannot do well.
//
// copyFile(source, destination, mode) -> Promise<void>
//   Creates destination (O_EXCL: it must not exist) with mode, then fills it by
//   reflink (FICLONE), else copy_file_range in the kernel, else read/write. Runs on
//   the libuv thread pool, so the caller can hash the source meanwhile.
//
// Why not fs.copyFile: libuv ftruncate()s the destination to 0 before copying.
// On ext4 a truncate to 0 arms the "replace via truncate" heuristic
// (auto_da_alloc), and close() then starts writeback of the whole file inside the
// call: 0.26 s of a 0.5 s copy of 1 GiB, measured with strace -T. A fresh O_EXCL
// file needs no truncate.
//
// copyAnonymous(source, directory, mode) -> Promise<number>
//   The same copy into an unnamed file in `directory` (O_TMPFILE), resolving with its fd,
//   or -1 when the file system cannot make one (the caller then uses copyFile). Until
//   linkAnonymous gives it a name, nothing of it is visible: a process killed in between
//   leaves nothing behind in the user's directory.
// linkAnonymous(fd, path)
//   Names that file `path` (which must not exist). Synchronous; throws like copyFile rejects.
//
// writeFile(temp, destination, pieces, mode, durable) -> Promise<void>
//   Creates temp (O_EXCL) with mode (less the umask), writes the Buffers in `pieces` in order,
//   fdatasyncs when durable, and renames it to destination (replacing one there); the
//   destination's directory is made when missing. One trip through the thread pool for
//   what fs.promises took five (open, write, close, rename, and a stat of the JS side):
//   a cold run stores a blob per captured stream. On failure temp is removed.
//
// A source that is not a regular file rejects with EINVAL.
// Errors reject with an Error whose .code is the errno name ("ENOENT", "EEXIST",
// ...) and .syscall the failing call, as Node's own fs errors do. On failure the
// destination is removed when this call created it.

#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace pcache {
namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EIO: return "EIO";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case EROFS: return "EROFS";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EFBIG: return "EFBIG";
    case EINVAL: return "EINVAL";
    default: return "EUNKNOWN";
  }
}

// Errors that mean "this way of copying is not available here", not "the copy failed".
bool Unsupported(int err) {
  return err == EXDEV || err == EOPNOTSUPP || err == ENOTTY || err == EINVAL || err == ENOSYS;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// An Error shaped like Node's own fs errors: "ENOENT: No such file ..., open 'path'", with
// .code, .errno, .syscall and .path.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path) {
  Napi::Error e = Napi::Error::New(env, std::string(ErrnoName(err)) + ": " + strerror(err) + ", " + syscall + " '" + path + "'");
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("path", Napi::String::New(env, path));
  return e;
}

// A pool job whose promise rejects with the errno of the call that failed (ErrnoError).
class ErrnoWorker : public Napi::AsyncWorker {
 public:
  explicit ErrnoWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void OnError(const Napi::Error&) override { deferred_.Reject(ErrnoError(Env(), errno_, syscall_, path_).Value()); }

 protected:
  // Records errno as this worker's failure; returns false so callers can chain.
  bool Fail(const char* syscall, const std::string& path) {
    errno_ = errno;
    syscall_ = syscall;
    path_ = path;
    SetError(syscall);
    return false;
  }

  Napi::Promise::Deferred deferred_;

 private:
  int errno_ = 0;
  std::string syscall_;
  std::string path_;
};

class CopyWorker : public ErrnoWorker {
 public:
  // anonymous: destination is a directory to make an unnamed file in (copyAnonymous).
  CopyWorker(Napi::Env env, std::string source, std::string destination, mode_t mode, bool anonymous = false)
      : ErrnoWorker(env), source_(std::move(source)), destination_(std::move(destination)), mode_(mode), anonymous_(anonymous) {}

  void Execute() override {
    // O_NONBLOCK: a FIFO put in the source's place must not hang a thread-pool thread in
    // open(); only a regular file is copied.
    int in = open(source_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (in < 0) {
      Fail("open", source_);
      return;
    }
    struct stat st;
    if (fstat(in, &st) != 0) {
      Fail("fstat", source_);
      close(in);
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      errno = EINVAL;
      Fail("open", source_);
      close(in);
      return;
    }
    int out;
    if (anonymous_) {
      out = open(destination_.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode_ & 07777);
      if (out < 0) {
        // EOPNOTSUPP/EISDIR/EINVAL: no unnamed files on this file system (or kernel).
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
          anonymousFd_ = -1;
        } else {
          Fail("open", destination_);
        }
        close(in);
        return;
      }
    } else {
      out = open(destination_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_ & 07777);
    }
    if (out < 0) {
      Fail("open", destination_);
      close(in);
      return;
    }
    bool ok = Copy(in, out) && (fchmod(out, mode_ & 07777) == 0 || Fail("fchmod", destination_));
    close(in);
    if (anonymous_) {
      // Kept open: it is the only way to the file until linkAnonymous names it.
      if (ok) anonymousFd_ = out;
      else close(out);
      return;
    }
    if (close(out) != 0 && ok) ok = Fail("close", destination_);
    if (!ok) unlink(destination_.c_str());
  }

  void OnOK() override {
    if (anonymous_) deferred_.Resolve(Napi::Number::New(Env(), anonymousFd_));
    else deferred_.Resolve(Env().Undefined());
  }

 private:

  bool Copy(int in, int out) {
    if (ioctl(out, FICLONE, in) == 0) return true;
    if (!Unsupported(errno)) return Fail("ioctl(FICLONE)", destination_);
    bool kernelCopy = true;
    for (;;) {
      ssize_t n = copy_file_range(in, nullptr, out, nullptr, size_t(1) << 30, 0);
      if (n > 0) continue;
      if (n == 0) return true;
      if (errno == EINTR) continue;
      // Nothing copied yet and the kernel cannot do it here (another file system,
      // an old kernel): fall back to read/write. Offsets are still 0 in that case.
      if (Unsupported(errno) && lseek(out, 0, SEEK_CUR) == 0) {
        kernelCopy = false;
        break;
      }
      return Fail("copy_file_range", destination_);
    }
    if (kernelCopy) return true;
    static constexpr size_t kChunk = size_t(1) << 20;
    std::string buffer(kChunk, '\0');
    for (;;) {
      ssize_t n = read(in, &buffer[0], kChunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail("read", source_);
      }
      if (n == 0) return true;
      if (!WriteAll(out, buffer.data(), static_cast<size_t>(n))) return Fail("write", destination_);
    }
  }

  std::string source_;
  std::string destination_;
  mode_t mode_;
  bool anonymous_;
  int anonymousFd_ = -1;
};

class WriteWorker : public ErrnoWorker {
 public:
  WriteWorker(Napi::Env env, std::string temp, std::string destination, Napi::Array pieces, mode_t mode, bool durable)
      : ErrnoWorker(env), temp_(std::move(temp)), destination_(std::move(destination)), mode_(mode), durable_(durable) {
    // The Buffers stay referenced until the worker is done: their bytes do not move.
    piecesRef_ = Napi::Persistent(pieces.As<Napi::Object>());
    for (uint32_t i = 0; i < pieces.Length(); i++) {
      Napi::Buffer<char> b = pieces.Get(i).As<Napi::Buffer<char>>();
      pieces_.push_back({b.Data(), b.Length()});
    }
  }

  void Execute() override {
    int out = open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_ & 07777);
    if (out < 0) {
      Fail("open", temp_);
      return;
    }
    bool ok = true;
    for (const auto& p : pieces_) {
      if (!WriteAll(out, p.first, p.second)) {
        ok = Fail("write", temp_);
        break;
      }
    }
    if (ok && durable_ && fdatasync(out) != 0) ok = Fail("fdatasync", temp_);
    if (close(out) != 0 && ok) ok = Fail("close", temp_);
    if (ok && rename(temp_.c_str(), destination_.c_str()) != 0) {
      // The destination's directory (a blob shard) removed since, or never made: once more.
      std::string dir = destination_.substr(0, destination_.rfind('/'));
      if (errno != ENOENT || dir.empty() || (mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) ||
          rename(temp_.c_str(), destination_.c_str()) != 0) {
        ok = Fail("rename", destination_);
      }
    }
    if (!ok) unlink(temp_.c_str());
  }

  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  std::string temp_;
  std::string destination_;
  mode_t mode_;
  bool durable_;
  Napi::ObjectReference piecesRef_;
  std::vector<std::pair<const char*, size_t>> pieces_;
};

Napi::Value WriteFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool piecesOk = info.Length() >= 3 && info[2].IsArray();
  if (piecesOk) {
    Napi::Array pieces = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < pieces.Length() && piecesOk; i++) piecesOk = pieces.Get(i).IsBuffer();
  }
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsString() || !piecesOk || !info[3].IsNumber() || !info[4].IsBoolean()) {
    Napi::TypeError::New(env, "writeFile(temp, destination, pieces: Buffer[], mode, durable)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new WriteWorker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
                                 info[2].As<Napi::Array>(), static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value()),
                                 info[4].As<Napi::Boolean>().Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// copyFile and copyAnonymous: (source, destination or directory, mode), queued on the pool.
Napi::Value QueueCopy(const Napi::CallbackInfo& info, bool anonymous, const char* usage) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new CopyWorker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
                                static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value()), anonymous);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value CopyFile(const Napi::CallbackInfo& info) { return QueueCopy(info, false, "copyFile(source, destination, mode)"); }

Napi::Value CopyAnonymous(const Napi::CallbackInfo& info) {
  return QueueCopy(info, true, "copyAnonymous(source, directory, mode)");
}

Napi::Value LinkAnonymous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "linkAnonymous(fd, path)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  // Through /proc: linkat(fd, "", ..., AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH.
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    ErrnoError(env, errno, "linkat", path).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("copyFile", Napi::Function::New(env, CopyFile));
  exports.Set("copyAnonymous", Napi::Function::New(env, CopyAnonymous));
  exports.Set("linkAnonymous", Napi::Function::New(env, LinkAnonymous));
  exports.Set("writeFile", Napi::Function::New(env, WriteFile));
  return exports;
}

NODE_API_MODULE(pcache_fileops, Init)

}  // namespace pcache
