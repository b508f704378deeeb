// speedbench's CUDA-graph shim: libtorch's at::cuda::CUDAGraph behind a C
// interface, for `--optimize cuda-graph`.
//
// Unlike shim.cpp this file needs CUDA's headers and libtorch_cuda.so, so
// build.rs makes it a shared library of its own (libspeedbench_cuda_graph.so,
// linked to libtorch_cuda) that the binary opens only when a cell asks for a
// CUDA graph, after libtorch's CUDA libraries are loaded. A binary whose
// libtorch has no CUDA headers builds without it and says so.
//
// CUDAGraph does what a graph capture under libtorch needs: it routes the
// caching allocator's allocations during the capture into a private pool
// (so the memory the replays use is never handed out again), defers the
// allocator's event queries until the capture ends, and captures the current
// stream, which must not be the default stream. Work forked to other streams
// through events is captured with it, as long as every stream joins the
// capturing one again before capture_end.
//
// Every function returns nullptr on success or an error message (guarded.h).

#include <ATen/cuda/CUDAGraph.h>

#include "guarded.h"

namespace {

using speedbench::guarded;

at::cuda::CUDAGraph* graph(void* g) { return static_cast<at::cuda::CUDAGraph*>(g); }

}  // namespace

extern "C" {

// A new, empty graph. Constructing one checks that CUDA is usable.
const char* sbg_graph_new(void** out) {
  return guarded([&] { *out = new at::cuda::CUDAGraph(); });
}

void sbg_graph_free(void* g) { delete graph(g); }

// Starts capturing the calling thread's current CUDA stream.
const char* sbg_capture_begin(void* g) { return guarded([&] { graph(g)->capture_begin(); }); }

// Ends the capture and instantiates the graph.
const char* sbg_capture_end(void* g) { return guarded([&] { graph(g)->capture_end(); }); }

// Launches the captured work on the current stream.
const char* sbg_replay(void* g) { return guarded([&] { graph(g)->replay(); }); }

}  // extern "C"
