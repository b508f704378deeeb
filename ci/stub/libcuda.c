/* A stand-in for the NVIDIA driver's libcuda.so.1 on a machine without a
 * GPU (ci/gpu-libs.sh): the libraries that link it can be loaded, and every
 * driver call answers "no device" (CUDA_ERROR_NO_DEVICE = 100). */
typedef int CUresult;
#define NO_DEVICE 100
CUresult cuInit(unsigned int flags) { (void)flags; return NO_DEVICE; }
CUresult cuDriverGetVersion(int *v) { if (v) *v = 13000; return 0; }
CUresult cuDeviceGetCount(int *n) { if (n) *n = 0; return NO_DEVICE; }
CUresult cuGetProcAddress(const char *s, void **p, int v, unsigned long long f) {
  (void)s; (void)v; (void)f; if (p) *p = 0; return NO_DEVICE;
}
CUresult cuGetProcAddress_v2(const char *s, void **p, int v, unsigned long long f, void *st) {
  (void)s; (void)v; (void)f; (void)st; if (p) *p = 0; return NO_DEVICE;
}
CUresult cuGetErrorString(CUresult e, const char **s) { (void)e; if (s) *s = "no device (stub libcuda)"; return 0; }
