// This CPU's bf16 AMX peak (tdpbf16ps: 16 rows × 32 × 16 multiply-adds each), for make bench:
// every core asks Linux for the tile state, then runs 4 accumulator tiles (2 × 2, as the kernels'
// lower/amx.rs does) from tile registers; prints GFLOP/s (2 per multiply-add), best of 5. Built by
// tests/bench/bench.sh with -mamx-tile -mamx-bf16; run only where the CPU has AMX.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { ITERS = 2000000 };

// palette | start row | reserved[14] | bytes per row of each tile [16] | rows of each tile [16]
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed));
_Static_assert(sizeof(struct tile_config) == 64, "the LDTILECFG layout");

static void *run(void *out) {
    static __thread char buf[4][1024] __attribute__((aligned(64)));
    struct tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) c.colsb[i] = 64, c.rows[i] = 16;
    _tile_loadconfig(&c);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, buf[0], 64); _tile_loadd(5, buf[1], 64); _tile_loadd(6, buf[2], 64); _tile_loadd(7, buf[3], 64);
    for (long i = 0; i < ITERS; i++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, buf[0], 64);
    _tile_release();
    *(int *)out = buf[0][0];
    return NULL;
}

int main(void) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */)) {
        fprintf(stderr, "amx_peak: Linux did not grant the AMX tile state\n");
        return 1;
    }
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        pthread_t t[256];
        int sink[256];
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, &sink[i]);
        for (long i = 0; i < threads; i++) pthread_join(t[i], NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
        double flops = 2.0 * 16 * 32 * 16 * 4 * (double)ITERS * threads / s / 1e9;
        if (flops > best) best = flops;
    }
    printf("%.1f\n", best);
    return 0;
}
