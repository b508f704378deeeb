/* A stand-in for the NVIDIA driver's libcuda.so.1 on a machine without a
 * GPU (ci/gpu-libs.sh): every driver entry point the CUDA libraries of
 * ONNX Runtime, libtorch and TensorFlow link to directly exists, so they
 * load; every call answers "no device" (CUDA_ERROR_NO_DEVICE = 100).
 * (The list: `nm -D --undefined-only` over those libraries, `cu[A-Z]*`.) */
typedef int CUresult;
#define NO_DEVICE 100
#define STUB(name) CUresult name() { return NO_DEVICE; }
CUresult cuDriverGetVersion(int *v) { if (v) *v = 13000; return 0; }
CUresult cuDeviceGetCount(int *n) { if (n) *n = 0; return NO_DEVICE; }
CUresult cuGetErrorString(CUresult e, const char **s) { (void)e; if (s) *s = "no device (stub libcuda)"; return 0; }
CUresult cuGetErrorName(CUresult e, const char **s) { (void)e; if (s) *s = "CUDA_ERROR_NO_DEVICE"; return 0; }
CUresult cuGetProcAddress(const char *s, void **p, int v, unsigned long long f) {
  (void)s; (void)v; (void)f; if (p) *p = 0; return NO_DEVICE;
}
CUresult cuGetProcAddress_v2(const char *s, void **p, int v, unsigned long long f, void *st) {
  (void)s; (void)v; (void)f; (void)st; if (p) *p = 0; return NO_DEVICE;
}
STUB(cuInit)
STUB(cuCtxPopCurrent_v2)
STUB(cuCtxPushCurrent_v2)
STUB(cuCtxSynchronize)
STUB(cuDeviceGet)
STUB(cuDeviceGetAttribute)
STUB(cuDeviceGetName)
STUB(cuDeviceTotalMem_v2)
STUB(cuLaunchKernel)
STUB(cuLinkAddData_v2)
STUB(cuLinkComplete)
STUB(cuLinkCreate_v2)
STUB(cuLinkDestroy)
STUB(cuModuleGetFunction)
STUB(cuModuleLoadData)
STUB(cuModuleUnload)
STUB(cuTensorMapEncodeIm2col)
STUB(cuTensorMapEncodeTiled)
