// The error convention of speedbench's C++ shims (shim.cpp, cuda_graph.cpp):
// every entry point runs its body in `guarded`, which catches C++ exceptions
// and returns nullptr on success or an error message, valid until the
// thread's next call into the shims.

#pragma once

#include <exception>
#include <string>

namespace speedbench {

inline thread_local std::string last_error;

template <typename F>
const char* guarded(F f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return last_error.c_str();
}

}  // namespace speedbench
