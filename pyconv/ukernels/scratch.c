/*
 * Per-thread scratch buffers that outlive a call: a driver's large work buffers (Winograd's transformed
 * tiles and GEMM results, a few hundred KB to 1 MB a thread) taken from here rather than from malloc on
 * every call.  Freed on every call, buffers of that size went back to the kernel (glibc trims the heap
 * top and unmaps its mmapped chunks) and each call faulted its pages in anew: a 28x28x32 Winograd layer
 * spent 0.44 ms a call instead of 0.06, most of it in page faults.  Each thread keeps the largest
 * buffer it has asked for in each slot until it exits (a destructor frees them).
 */
#include <pthread.h>
#include <stdlib.h>

#include "ukernels.h"

typedef struct {
    void *buffer[PYCONV_SCRATCH_SLOTS];
    size_t bytes[PYCONV_SCRATCH_SLOTS];
} pyconv_scratch;

static pthread_key_t pyconv_scratch_key;
static pthread_once_t pyconv_scratch_once = PTHREAD_ONCE_INIT;
static int pyconv_scratch_ready;

static void pyconv_scratch_release(void *p) {
    pyconv_scratch *s = p;
    for (int i = 0; i < PYCONV_SCRATCH_SLOTS; i++) free(s->buffer[i]);
    free(s);
}

static void pyconv_scratch_init(void) {
    pyconv_scratch_ready = pthread_key_create(&pyconv_scratch_key, pyconv_scratch_release) == 0;
}

void *pyconv_thread_scratch(int slot, size_t bytes) {
    if (slot < 0 || slot >= PYCONV_SCRATCH_SLOTS) return NULL;
    pthread_once(&pyconv_scratch_once, pyconv_scratch_init);
    if (!pyconv_scratch_ready) return NULL;
    pyconv_scratch *s = pthread_getspecific(pyconv_scratch_key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL || pthread_setspecific(pyconv_scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->bytes[slot] < bytes || s->buffer[slot] == NULL) {
        free(s->buffer[slot]);
        s->buffer[slot] = pyconv_aligned_alloc(bytes);
        s->bytes[slot] = s->buffer[slot] != NULL ? bytes : 0;
    }
    return s->buffer[slot];
}
