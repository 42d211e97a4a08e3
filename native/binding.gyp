{
  "targets": [
    {
      "target_name": "pcache_tracer",
      "sources": [
        "src/addon.cc",
        "src/tracer.cc",
        "src/syscall_table.cc",
        "src/seccomp_filter.cc",
        "src/path_resolver.cc",
        "src/path_event.cc",
        "src/notifier.cc",
        "src/tracee_memory.cc",
        "src/procfs.cc",
        "src/relay.cc",
        "src/exec_chain.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "pcache_fileops",
      "sources": ["src/file_copy.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"]
    }
  ]
}
