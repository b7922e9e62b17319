// CUDA device discovery, callable from C.
#ifndef LCC_CUDA_DEVICE_H
#define LCC_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif
// Number of usable CUDA devices; 0 (with the reason in why) when there is no GPU or driver.
int lcc_cuda_device_count(char *why, size_t why_len);
#ifdef __cplusplus
}
#endif

#endif
