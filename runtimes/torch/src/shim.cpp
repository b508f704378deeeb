// speedbench's libtorch shim: what the tch crate has no API for.
//
// Host-only C++ (no kernels, so no nvcc). Streams and events go through c10's
// device-generic interface (DeviceGuardImplInterface, c10::Event): the CUDA
// implementation behind it is libtorch's own (stream pool, events,
// setCurrentCUDAStream), registered when libtorch_cuda.so is loaded. So this
// file builds and links without CUDA, and a CUDA call made before that library
// is loaded fails with an error instead of crashing.
//
// Every function returns nullptr on success or an error message (guarded.h).

#include <ATen/Context.h>
#include <ATen/Version.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/List.h>
#include <c10/core/Device.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/Event.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/MemoryFormat.h>
#include <c10/core/Stream.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdint>
#include <string>

#include "guarded.h"

namespace {

using speedbench::guarded;

const c10::impl::DeviceGuardImplInterface* cuda() {
  return c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
}

}  // namespace

extern "C" {

// A stream as plain data (c10::Stream::pack3), so Rust can hold it by value.
struct sb_stream {
  int64_t id;
  int32_t device_index;
  int32_t device_type;
};

static c10::Stream unpack(sb_stream s) {
  return c10::Stream::unpack3(s.id, static_cast<c10::DeviceIndex>(s.device_index),
                              static_cast<c10::DeviceType>(s.device_type));
}

static sb_stream pack(const c10::Stream& s) {
  auto d = s.pack3();
  return sb_stream{d.stream_id, d.device_index, static_cast<int32_t>(d.device_type)};
}

// at::show_config() of the loaded libtorch (holds TORCH_VERSION=...).
const char* sb_torch_config(const char** out) {
  return guarded([&] {
    static const std::string config = at::show_config();
    *out = config.c_str();
  });
}

// TF32 in cuDNN convolutions and cuBLAS on (--precision tf32) or off
// (plain float32).
const char* sb_cuda_tf32(int32_t allow) {
  return guarded([&] {
    at::globalContext().setAllowTF32CuDNN(allow != 0);
    at::globalContext().setAllowTF32CuBLAS(allow != 0);
  });
}

// A stream from libtorch's CUDA stream pool.
const char* sb_stream_from_pool(int32_t device, sb_stream* out) {
  return guarded([&] {
    c10::Device d(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device));
    *out = pack(cuda()->getStreamFromGlobalPool(d, false));
  });
}

// Makes `s` the calling thread's current stream; `prev` gets the old one.
const char* sb_stream_exchange(sb_stream s, sb_stream* prev) {
  return guarded([&] { *prev = pack(cuda()->exchangeStream(unpack(s))); });
}

const char* sb_stream_synchronize(sb_stream s) {
  return guarded([&] { cuda()->synchronizeStream(unpack(s)); });
}

const char* sb_event_new(void** out) {
  return guarded([&] { *out = new c10::Event(c10::DeviceType::CUDA); });
}

// An event that records a timestamp (for the traced pass's per-operation
// times on a stream); the schedule's own events skip timing.
const char* sb_event_new_timed(void** out) {
  return guarded([&] {
    *out = new c10::Event(c10::DeviceType::CUDA, c10::EventFlag::BACKEND_DEFAULT);
  });
}

// Milliseconds from timed event `a` to timed event `b`, both completed.
const char* sb_event_elapsed(void* a, void* b, double* ms) {
  return guarded([&] {
    *ms = static_cast<c10::Event*>(a)->elapsedTime(*static_cast<c10::Event*>(b));
  });
}

void sb_event_free(void* ev) { delete static_cast<c10::Event*>(ev); }

// Records the event on `s` (after the work queued on it so far).
const char* sb_event_record(void* ev, sb_stream s) {
  return guarded([&] { static_cast<c10::Event*>(ev)->record(unpack(s)); });
}

// Work queued on `s` from now on waits for the event.
const char* sb_event_block(void* ev, sb_stream s) {
  return guarded([&] { static_cast<c10::Event*>(ev)->block(unpack(s)); });
}

// Tells the caching allocator that `s` uses the tensor's memory, so the block
// is not reused before the work on `s` is done. `t` is tch's C_tensor, which is
// an at::Tensor*.
const char* sb_record_stream(void* t, sb_stream s) {
  return guarded([&] { static_cast<at::Tensor*>(t)->record_stream(unpack(s)); });
}

// An inference-mode guard for the calling thread (tch has none); freed on
// the same thread with sb_inference_mode_exit.
void* sb_inference_mode_enter() { return new c10::InferenceMode(true); }

void sb_inference_mode_exit(void* guard) { delete static_cast<c10::InferenceMode*>(guard); }

// `t` in channels-last (NHWC strides) memory format, as a new tensor.
const char* sb_channels_last(void* t, void** out) {
  return guarded([&] {
    *out = new at::Tensor(static_cast<at::Tensor*>(t)->contiguous(c10::MemoryFormat::ChannelsLast));
  });
}

// A convolution through oneDNN's fused CPU operator (the one PyTorch's
// Inductor emits on CPU, `mkldnn::_convolution_pointwise`): `w` may be a
// weight already reordered for oneDNN (mkldnn_reorder_conv2d_weight), so it
// is not reordered on every call; with `other`, the result is
// conv(x) + other (`.binary`, "add"); with `relu`, ReLU is applied last.
// `b` and `other` may be null. Dilation 1.
const char* sb_conv_pointwise(void* x, void* w, void* b, void* other, int64_t stride,
                              int64_t pad, int64_t groups, int32_t relu, void** out) {
  return guarded([&] {
    using at::Tensor;
    using Scalars = c10::List<std::optional<at::Scalar>>;
    const Tensor& input = *static_cast<Tensor*>(x);
    const Tensor& weight = *static_cast<Tensor*>(w);
    std::optional<Tensor> bias;
    if (b != nullptr) bias = *static_cast<Tensor*>(b);
    const int64_t st[2] = {stride, stride};
    const int64_t pd[2] = {pad, pad};
    const int64_t dl[2] = {1, 1};
    const char* unary = relu != 0 ? "relu" : "none";
    if (other == nullptr) {
      static auto op =
          c10::Dispatcher::singleton()
              .findSchemaOrThrow("mkldnn::_convolution_pointwise", "")
              .typed<Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&,
                            c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, int64_t,
                            c10::string_view, Scalars, std::optional<c10::string_view>)>();
      *out = new Tensor(op.call(input, weight, bias, pd, st, dl, groups, unary, Scalars(),
                                std::nullopt));
      return;
    }
    static auto binary =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("mkldnn::_convolution_pointwise", "binary")
            .typed<Tensor(const Tensor&, const Tensor&, const Tensor&, const std::optional<Tensor>&,
                          c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, int64_t,
                          c10::string_view, std::optional<at::Scalar>,
                          std::optional<c10::string_view>, Scalars,
                          std::optional<c10::string_view>)>();
    *out = new Tensor(binary.call(input, *static_cast<Tensor*>(other), weight, bias, pd, st, dl,
                                  groups, "add", std::nullopt,
                                  relu != 0 ? std::optional<c10::string_view>("relu") : std::nullopt,
                                  Scalars(),
                                  std::nullopt));
  });
}

// Bytes the CUDA caching allocator holds for tensors on `device`: now, and
// the peak since the last sb_cuda_reset_peak.
const char* sb_cuda_memory(int32_t device, int64_t* current, int64_t* peak) {
  return guarded([&] {
    auto stats = c10::getDeviceAllocator(c10::DeviceType::CUDA)
                     ->getDeviceStats(static_cast<c10::DeviceIndex>(device));
    const auto& all = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)];
    *current = all.current;
    *peak = all.peak;
  });
}

const char* sb_cuda_reset_peak(int32_t device) {
  return guarded([&] {
    c10::getDeviceAllocator(c10::DeviceType::CUDA)
        ->resetPeakStats(static_cast<c10::DeviceIndex>(device));
  });
}

}  // extern "C"
