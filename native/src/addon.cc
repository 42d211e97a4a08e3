// N-API surface of the tracer (typed in src/trace/native.ts). Argument
// validation and messages live in TypeScript; this file re-checks cheaply.
//
// Threads: start/resolveExec/resolveExit/signal/stats run on the JS thread.
// The tracer thread only talks to JS through one ThreadSafeFunction, whose
// callback (CallJs) runs on the JS thread. The thread is joined in the TSFN
// finalizer, after it released the function.

#include <napi.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "events.h"
#include "exec_chain.h"
#include "tracer.h"

namespace pcache {

namespace {

// JS strings made once per batch for the property names of events and requests and for the
// tracer's constant values ("fs", "open", "pipe", "read-back"): napi_set_named_property makes
// its key from UTF-8 and looks it up among V8's internalized strings at every call, which was
// about 30% of the JS thread's time converting the events of 1,000 short processes. The values
// live in the handle scope of the batch's callback (Node-API before version 10 keeps no
// reference to a string). Found by address (the names and values given here are literals or
// live in static tables) and checked by content, so a string from anywhere else is never
// mistaken for what an earlier one at the same address said.
class Names {
 public:
  napi_value get(Napi::Env env, const char* s) {
    auto it = strings_.find(s);
    if (it != strings_.end() && it->second.text == s) return it->second.value;
    Known& k = strings_[s];
    k.text = s;
    k.value = Napi::String::New(env, s);
    return k.value;
  }

 private:
  struct Known {
    std::string text;
    napi_value value = nullptr;
  };
  std::unordered_map<const char*, Known> strings_;
};

// A JS object built with names from Names.
class Builder {
 public:
  Builder(Napi::Env env, Names& names) : env_(env), names_(names), o_(Napi::Object::New(env)) {}
  void set(const char* k, napi_value v) {
    if (napi_set_property(env_, o_, names_.get(env_, k), v) != napi_ok) Napi::Error::New(env_).ThrowAsJavaScriptException();
  }
  void num(const char* k, double v) { set(k, Napi::Number::New(env_, v)); }
  void str(const char* k, const std::string& v) { set(k, Napi::String::New(env_, v)); }
  // `v` is a literal or in a static table (see Names).
  void name(const char* k, const char* v) { set(k, names_.get(env_, v)); }
  void flag(const char* k, bool v) { set(k, Napi::Boolean::New(env_, v)); }
  Napi::Object object() const { return o_; }

 private:
  Napi::Env env_;
  Names& names_;
  Napi::Object o_;
};

struct Context {
  Napi::FunctionReference onEvents, onExec, onExit, onPreimage, onDone;
  std::shared_ptr<Tracer> tracer;
  // The environment of the last exec request, and the (frozen) JS array made of it.
  std::vector<std::string> lastEnv;
  Napi::Reference<Napi::Array> lastEnvArray;
  // Numbers the batches: onEvents gets it, so that JS knows which calls one batch made.
  double batches = 0;
};

void CallJs(Napi::Env env, Napi::Function, Context* ctx, Batch* b);
using Tsfn = Napi::TypedThreadSafeFunction<Context, Batch, CallJs>;

// A JS array of toJs(item) for each item of v.
template <typename T, typename F>
Napi::Array arrayOf(Napi::Env env, const std::vector<T>& v, F toJs) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(static_cast<uint32_t>(i), toJs(v[i]));
  return a;
}

Napi::Array strings(Napi::Env env, const std::vector<std::string>& v) {
  return arrayOf(env, v, [env](const std::string& s) { return Napi::String::New(env, s); });
}

Napi::Value nullable(Napi::Env env, bool has, int v) {
  return has ? Napi::Number::New(env, v) : env.Null();
}

Napi::Array fdsToJs(Napi::Env env, Names& names, const std::vector<FdSnapshot>& v) {
  return arrayOf(env, v, [env, &names](const FdSnapshot& s) {
    Builder f(env, names);
    f.num("fd", s.fd);
    f.str("target", s.target);
    f.name("kind", s.kind);
    f.num("pos", static_cast<double>(s.pos));
    f.num("flags", static_cast<double>(s.flags));
    return f.object();
  });
}

// Captured bytes as a Buffer. Large ones (a relay's or a read-back's megabytes) are handed
// over rather than copied: the Buffer owns the string, freed when it is collected.
Napi::Buffer<char> dataBuffer(Napi::Env env, std::string& data) {
  if (data.size() < kDataHandOverBytes) return Napi::Buffer<char>::Copy(env, data.data(), data.size());
  auto* owned = new std::string(std::move(data));
  return Napi::Buffer<char>::New(env, owned->data(), owned->size(), [](Napi::Env, char*, std::string* s) { delete s; }, owned);
}

Napi::Object eventToJs(Napi::Env env, Names& names, Event& e) {
  Builder o(env, names);
  o.num("pid", e.pid);
  switch (e.kind) {
    case EventKind::Fs:
      o.name("k", "fs");
      o.name("op", e.op);
      o.str("path", e.path);
      if (!e.path2.empty() || e.type2) o.str("path2", e.path2);
      if (!e.linkTarget.empty() || std::string(e.op) == "symlink") o.str("linkTarget", e.linkTarget);
      o.num("flags", static_cast<double>(e.flags));
      o.num("mode", static_cast<double>(e.mode));
      o.flag("follow", e.follow);
      o.str("type", std::string(1, e.type ? e.type : '-'));
      if (e.type2) o.str("type2", std::string(1, e.type2));
      o.set("links", strings(env, e.links));
      o.set("result", e.hasResult ? Napi::Number::New(env, static_cast<double>(e.result)) : env.Null());
      if (e.token) o.num("token", static_cast<double>(e.token));
      if (e.fdLink != -1) o.num("fdLink", e.fdLink);
      if (strcmp(e.op, "cpus") == 0) o.str("size", e.detail);  // how many CPUs it may use
      if (strcmp(e.op, "termsize") == 0 || strcmp(e.op, "termset") == 0) {
        o.num("fd", e.fd);
        // termsize: what it was told ("ROWSxCOLUMNS"); termset: the request
        o.str(strcmp(e.op, "termsize") == 0 ? "size" : "request", e.detail);
      }
      if (e.hasIdentity && strcmp(e.op, "open") == 0) {
        Napi::Array id = Napi::Array::New(env, 6);
        // as doubles the way Node's fs.Stats makes them (an inode number can exceed 2^63)
        const double parts[6] = {static_cast<double>(e.ino), static_cast<double>(e.size),
                                 static_cast<double>(e.mtimeSec), static_cast<double>(e.mtimeNsec),
                                 static_cast<double>(e.ctimeSec), static_cast<double>(e.ctimeNsec)};
        for (uint32_t i = 0; i < 6; i++) id.Set(i, Napi::Number::New(env, parts[i]));
        o.set("identity", id);
      }
      break;
    case EventKind::Spawn:
      o.name("k", "spawn");
      o.num("parent", e.parent);
      o.flag("thread", e.thread);
      o.num("tgid", e.tgid);
      break;
    case EventKind::Exec:
      o.name("k", "exec");
      o.num("formerTid", e.formerTid);
      o.set("fds", fdsToJs(env, names, e.fds));
      o.num("token", static_cast<double>(e.token));
      break;
    case EventKind::Exit:
      o.name("k", "exit");
      o.num("tgid", e.tgid);
      o.flag("processExit", e.processExit);
      o.set("code", nullable(env, e.hasCode, e.code));
      o.set("signal", nullable(env, e.hasSignal, e.signal));
      o.num("time", e.time);
      break;
    case EventKind::Io:
      o.name("k", "io");
      o.num("fd", e.fd);
      o.str("dir", std::string(1, e.dir));
      o.str("target", e.target);
      o.name("kind", e.fdKind);
      if (e.hasData) o.set("data", dataBuffer(env, e.data));
      o.num("count", static_cast<double>(e.count));
      if (e.uncapturable) o.flag("uncapturable", true);
      if (e.readback) {
        o.flag("readback", true);
        o.num("token", static_cast<double>(e.token));
      }
      if (e.hasStamp) {
        // [dev, ino, size, mtimeNs, ctimeNs, atNs] as BigInts, exact like fs's bigint stats
        Napi::Array stamp = Napi::Array::New(env, 6);
        stamp.Set(0u, Napi::BigInt::New(env, static_cast<uint64_t>(e.stampDev)));
        stamp.Set(1u, Napi::BigInt::New(env, static_cast<uint64_t>(e.stampIno)));
        stamp.Set(2u, Napi::BigInt::New(env, e.stampSize));
        stamp.Set(3u, Napi::BigInt::New(env, e.stampMtimeNs));
        stamp.Set(4u, Napi::BigInt::New(env, e.stampCtimeNs));
        stamp.Set(5u, Napi::BigInt::New(env, e.stampAtNs));
        o.set("stamp", stamp);
      }
      o.name("syscall", e.syscall);
      break;
    case EventKind::Net:
      o.name("k", "net");
      o.name("op", e.netOp);
      o.num("family", e.family);
      o.str("address", e.address);
      o.num("socktype", e.socktype);
      break;
    case EventKind::Unknown:
      o.name("k", "unknown");
      o.name("syscall", e.syscall);
      o.num("nr", e.nr);
      o.str("detail", e.detail);
      break;
  }
  return o.object();
}

// A 64-bit exec signature as JS sees it: 16 lowercase hex digits.
std::string hex64(uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::vector<uint64_t> sigArray(Napi::Value v) {
  std::vector<uint64_t> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    std::string h = a.Get(i).ToString().Utf8Value();
    if (h.size() == 16 && h.find_first_not_of("0123456789abcdef") == std::string::npos)
      out.push_back(strtoull(h.c_str(), nullptr, 16));
  }
  return out;
}

Napi::Array impliedToJs(Napi::Env env, Names& names, const std::vector<ImpliedInput>& implied) {
  return arrayOf(env, implied, [env, &names](const ImpliedInput& i) {
    Builder x(env, names);
    x.str("path", i.path);
    x.name("kind", i.kind);
    return x.object();
  });
}

// Nearly every exec passes on the environment it was given: a run of execs with equal
// environments shares one JS array, frozen since every one of their requests holds it.
Napi::Array envToJs(Napi::Env env, Context* ctx, const std::vector<std::string>& v) {
  if (!ctx->lastEnvArray.IsEmpty() && v == ctx->lastEnv) return ctx->lastEnvArray.Value();
  Napi::Array a = strings(env, v);
  a.Freeze();
  ctx->lastEnv = v;
  ctx->lastEnvArray = Napi::Persistent(a);
  return a;
}

Napi::Object execToJs(Napi::Env env, Context* ctx, Names& names, const ExecRequest& r) {
  Builder o(env, names);
  o.num("token", static_cast<double>(r.token));
  o.num("pid", r.pid);
  o.num("tgid", r.tgid);
  o.str("path", r.path);
  o.set("links", strings(env, r.links));
  o.set("implied", impliedToJs(env, names, r.implied));
  o.set("argv", strings(env, r.argv));
  o.set("env", envToJs(env, ctx, r.env));
  o.str("cwd", r.cwd);
  o.num("umask", r.umask);
  if (r.cpus >= 0) o.num("cpus", r.cpus);
  o.set("fds", fdsToJs(env, names, r.fds));
  o.num("time", r.time);
  if (r.readback) o.flag("readback", true);
  o.str("execSig", hex64(r.execSig));
  if (r.decided) o.flag("decided", true);
  return o.object();
}

// JS thread.
void CallJs(Napi::Env env, Napi::Function, Context* ctx, Batch* b) {
  std::unique_ptr<Batch> owned(b);
  if (env == nullptr || ctx == nullptr) return;
  Napi::HandleScope scope(env);
  Names names;
  // Events and the requests nobody waits for, in the order they happened: a failed PATH
  // probe between two execs must reach the folder after the first and before the second.
  size_t next = 0;
  Napi::Number batch = Napi::Number::New(env, ++ctx->batches);
  auto deliverEvents = [&](size_t upTo) {
    if (upTo <= next) return true;
    Napi::Array arr = Napi::Array::New(env, upTo - next);
    for (size_t i = next; i < upTo; i++) arr.Set(static_cast<uint32_t>(i - next), eventToJs(env, names, b->events[i]));
    next = upTo;
    ctx->onEvents.Call({arr, batch});
    return !env.IsExceptionPending();
  };
  for (const ExecRequest& r : b->execNotices) {
    if (!deliverEvents(std::min(r.eventIndex, b->events.size()))) return;
    ctx->onExec.Call({execToJs(env, ctx, names, r)});
    if (env.IsExceptionPending()) return;
  }
  if (!deliverEvents(b->events.size())) return;
  if (b->hasExec) {
    ctx->onExec.Call({execToJs(env, ctx, names, b->exec)});
    if (env.IsExceptionPending()) return;
  }
  if (b->hasExit) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("token", Napi::Number::New(env, static_cast<double>(b->exit.token)));
    o.Set("pid", b->exit.pid);
    o.Set("tid", b->exit.tid);
    o.Set("code", nullable(env, b->exit.hasCode, b->exit.code));
    o.Set("signal", nullable(env, b->exit.hasSignal, b->exit.signal));
    ctx->onExit.Call({o});
    if (env.IsExceptionPending()) return;
  }
  if (b->hasPreimage) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("token", Napi::Number::New(env, static_cast<double>(b->preimage.token)));
    o.Set("pid", b->preimage.pid);
    Napi::Array items = Napi::Array::New(env, b->preimage.items.size());
    for (size_t i = 0; i < b->preimage.items.size(); i++) {
      Napi::Object it = Napi::Object::New(env);
      it.Set("path", b->preimage.items[i].path);
      it.Set("kind", b->preimage.items[i].kind);
      items.Set(static_cast<uint32_t>(i), it);
    }
    o.Set("items", items);
    ctx->onPreimage.Call({o});
    if (env.IsExceptionPending()) return;
  }
  if (b->done) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("code", nullable(env, b->doneNotice.hasCode, b->doneNotice.code));
    o.Set("signal", nullable(env, b->doneNotice.hasSignal, b->doneNotice.signal));
    if (!b->doneNotice.error.empty()) o.Set("error", b->doneNotice.error);
    ctx->onDone.Call({o});
  }
}

class TracerHandle : public Napi::ObjectWrap<TracerHandle> {
 public:
  static Napi::FunctionReference ctor;

  static void Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "NativeTracer",
                                   {InstanceMethod("resolveExec", &TracerHandle::ResolveExec),
                                    InstanceMethod("resolveExit", &TracerHandle::ResolveExit),
                                    InstanceMethod("resolvePreimage", &TracerHandle::ResolvePreimage),
                                    InstanceMethod("signal", &TracerHandle::Signal),
                                    InstanceMethod("allowExecs", &TracerHandle::AllowExecs),
                                    InstanceMethod("stats", &TracerHandle::Stats)});
    ctor = Napi::Persistent(f);
    ctor.SuppressDestruct();
  }

  explicit TracerHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TracerHandle>(info) {}

  std::shared_ptr<Tracer> tracer;

 private:
  Napi::Value ResolveExec(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsObject()) {
      Napi::TypeError::New(env, "resolveExec(token, decision)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object d = info[1].As<Napi::Object>();
    ExecDecision dec;
    std::string action = d.Get("action").ToString().Utf8Value();
    dec.skip = action == "skip";
    if (dec.skip) dec.exitCode = d.Get("exitCode").ToNumber().Int32Value();
    Napi::Value hold = d.Get("holdExit");
    dec.holdExit = hold.IsBoolean() && hold.As<Napi::Boolean>().Value();
    if (tracer) tracer->resolveExec(info[0].As<Napi::Number>().Int64Value(), dec);
    return env.Undefined();
  }
  Napi::Value ResolveExit(const Napi::CallbackInfo& info) {
    if (tracer && info.Length() > 0 && info[0].IsNumber()) tracer->resolveExit(info[0].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  }
  Napi::Value ResolvePreimage(const Napi::CallbackInfo& info) {
    if (tracer && info.Length() > 0 && info[0].IsNumber())
      tracer->resolvePreimage(info[0].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  }
  Napi::Value Signal(const Napi::CallbackInfo& info) {
    if (tracer && info.Length() > 0 && info[0].IsNumber()) tracer->signalRoot(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }
  Napi::Value AllowExecs(const Napi::CallbackInfo& info) {
    if (tracer && info.Length() > 0) tracer->allowExecs(sigArray(info[0]));
    return info.Env().Undefined();
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    if (tracer)
      for (auto& [k, v] : tracer->stats()) o.Set(k, Napi::Number::New(info.Env(), static_cast<double>(v)));
    return o;
  }
};

Napi::FunctionReference TracerHandle::ctor;

std::vector<std::string> stringArray(Napi::Value v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

// JS thread.
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "start(options)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  const char* callbacks[] = {"onEvents", "onExec", "onExit", "onPreimage", "onDone"};
  for (const char* c : callbacks) {
    if (!o.Get(c).IsFunction()) {
      Napi::TypeError::New(env, std::string("start: ") + c + " must be a function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  std::vector<std::string> argv = stringArray(o.Get("argv"));
  if (argv.empty()) {
    Napi::TypeError::New(env, "start: argv must be a non-empty array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string file = o.Get("file").IsString() ? o.Get("file").ToString().Utf8Value() : argv[0];
  std::vector<std::string> envv = stringArray(o.Get("env"));
  std::string cwd = o.Get("cwd").IsString() ? o.Get("cwd").ToString().Utf8Value() : "";

  auto* ctx = new Context();
  ctx->onEvents = Napi::Persistent(o.Get("onEvents").As<Napi::Function>());
  ctx->onExec = Napi::Persistent(o.Get("onExec").As<Napi::Function>());
  ctx->onExit = Napi::Persistent(o.Get("onExit").As<Napi::Function>());
  ctx->onPreimage = Napi::Persistent(o.Get("onPreimage").As<Napi::Function>());
  ctx->onDone = Napi::Persistent(o.Get("onDone").As<Napi::Function>());

  auto tsfn = std::make_shared<Tsfn>();
  *tsfn = Tsfn::New(env, "pcache-tracer", 0, 1, ctx, [](Napi::Env, void*, Context* c) {
    // JS thread, after the tracer thread released the function.
    if (c->tracer) c->tracer->join();
    delete c;
  });
  auto tracer = std::make_shared<Tracer>(
      file, argv, envv, cwd, [tsfn](Batch* b) { tsfn->NonBlockingCall(b); }, [tsfn] { tsfn->Release(); });
  Napi::Value ask = o.Get("askExec");
  if (ask.IsBoolean()) tracer->setAskExec(ask.As<Napi::Boolean>().Value());
  Napi::Value limit = o.Get("readbackLimit");
  if (limit.IsNumber()) tracer->setReadbackLimit(limit.As<Napi::Number>().Int64Value());
  Napi::Value filter = o.Get("execFilter");
  if (filter.IsArray()) tracer->setExecFilter(sigArray(filter));
  ctx->tracer = tracer;

  Napi::Object handle = TracerHandle::ctor.New({});
  TracerHandle::Unwrap(handle)->tracer = tracer;
  tracer->start();
  return handle;
}

// JS thread. A duplicate of another process's fd (pidfd_getfd): it shares that
// process's open file description, so writing through it advances the same
// offset, exactly as the process's own write would. Returns -errno on failure.
Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "dupFd(pid, fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int pid = info[0].As<Napi::Number>().Int32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return Napi::Number::New(env, -errno);
  int got = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  int err = errno;
  close(pidfd);
  if (got < 0) return Napi::Number::New(env, -err);
  fcntl(got, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, got);
}

// JS thread. What the tracer records as read by the kernel to exec `path` (execImpliedInputs),
// resolved from `cwd` as pcache's own process: for tests of the chain without an exec.
Napi::Value ExecImpliedInputs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "execImpliedInputs(path, cwd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<ImpliedInput> out;
  pid_t self = getpid();
  execImpliedInputs(self, self, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(), nullptr, out);
  Names names;
  return impliedToJs(env, names, out);
}

}  // namespace

// The status flags of fds 0-2 (O_NONBLOCK above all) as they were when pcache
// started. Node turns them non-blocking when it first writes to a pipe or a
// terminal, and they are shared with the command (one open file description):
// the command must see them as a plain run would, and so must whoever gets
// them back after pcache exits.
int g_stdioFlags[3] = {-1, -1, -1};
// Duplicates of fds 0-2 as pcache received them. On a terminal, libuv reopens the
// terminal onto fd 1/2 as soon as anything touches process.stdout/stderr (loading
// yargs does): the command must get the caller's descriptions back, not Node's.
int g_stdioOrig[3] = {-1, -1, -1};

// Descriptors above 2 that pcache was given open (bin/pcache lists them in
// PCACHE_INHERITED_FDS before Node marks them close-on-exec): the command gets them too,
// as it would without pcache. Only numbers still open when the addon loads are kept, and
// the variable is removed so that the command's environment does not carry it.
constexpr int kMaxInheritedFds = 256;
int g_inheritedFds[kMaxInheritedFds];
int g_inheritedFdCount = 0;

static void noteInheritedFds() {
  static bool done = false;
  if (done) return;
  done = true;
  const char* list = getenv("PCACHE_INHERITED_FDS");
  if (list == nullptr) return;
  const char* c = list;
  while (*c != '\0' && g_inheritedFdCount < kMaxInheritedFds) {
    char* end = nullptr;
    long fd = strtol(c, &end, 10);
    if (end == c) break;
    c = end;
    while (*c == ' ') c++;
    if (fd > 2 && fd < (1 << 20) && fcntl(static_cast<int>(fd), F_GETFD) >= 0)
      g_inheritedFds[g_inheritedFdCount++] = static_cast<int>(fd);
  }
  unsetenv("PCACHE_INHERITED_FDS");
}

// Variables meant for the command that would change pcache's own Node (NODE_OPTIONS could
// load code into it, NODE_EXTRA_CA_CERTS parses a certificate bundle at every start, ...):
// bin/pcache hands them over as PCACHE_KEPT_<name> so that this Node starts without them,
// and they are put back here, before anything reads the environment, for the command.
static void restoreKeptEnv() {
  static const char kPrefix[] = "PCACHE_KEPT_";
  constexpr size_t kPrefixLen = sizeof(kPrefix) - 1;
  std::vector<std::pair<std::string, std::string>> kept;  // (name, value)
  for (char** e = environ; *e != nullptr; e++) {
    if (strncmp(*e, kPrefix, kPrefixLen) != 0) continue;
    const char* eq = strchr(*e, '=');
    if (eq == nullptr || eq == *e + kPrefixLen) continue;
    const char* name = *e + kPrefixLen;
    kept.emplace_back(std::string(name, static_cast<size_t>(eq - name)), std::string(eq + 1));
  }
  for (const auto& [name, value] : kept) {
    setenv(name.c_str(), value.c_str(), 1);
    unsetenv((kPrefix + name).c_str());
  }
}

Napi::Value RestoreStdioFlags(const Napi::CallbackInfo& info) {
  for (int fd = 0; fd <= 2; fd++) {
    if (g_stdioFlags[fd] < 0) continue;
    fcntl(g_stdioOrig[fd] >= 0 ? g_stdioOrig[fd] : fd, F_SETFL, g_stdioFlags[fd]);
  }
  return info.Env().Undefined();
}

// [rows, columns] of the terminal on fd, or null. Asking Node instead would create
// process.stderr, and on a terminal libuv then reopens it onto fd 2: the command
// would inherit a different open file description (other flags) than a plain run.
// Given a path instead (a terminal a traced program asked the size of), the terminal there:
// opened without becoming anyone's controlling terminal and without waiting for a line;
// the pty multiplexer is never opened (each open makes a new terminal).
Napi::Value TermSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct winsize ws;
  if (info.Length() > 0 && info[0].IsString()) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode) || path == "/dev/ptmx" || path == "/dev/pts/ptmx")
      return env.Null();
    int fd = open(path.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return env.Null();
    int r = ioctl(fd, TIOCGWINSZ, &ws);
    close(fd);
    if (r != 0) return env.Null();
  } else {
    int fd = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 2;
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return env.Null();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, ws.ws_row));
  a.Set(1u, Napi::Number::New(env, ws.ws_col));
  return a;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("termSize", Napi::Function::New(env, TermSize));
  for (int fd = 0; fd <= 2; fd++) {
    if (g_stdioFlags[fd] >= 0) continue;
    g_stdioFlags[fd] = fcntl(fd, F_GETFL);
    if (g_stdioFlags[fd] >= 0) g_stdioOrig[fd] = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  }
  noteInheritedFds();
  restoreKeptEnv();
  exports.Set("restoreStdioFlags", Napi::Function::New(env, RestoreStdioFlags));
  TracerHandle::Init(env);
  exports.Set("eventVersion", Napi::Number::New(env, kNativeEventVersion));
  exports.Set("start", Napi::Function::New(env, Start));
  exports.Set("dupFd", Napi::Function::New(env, DupFd));
  exports.Set("execImpliedInputs", Napi::Function::New(env, ExecImpliedInputs));
  return exports;
}

NODE_API_MODULE(pcache_tracer, Init)

}  // namespace pcache
