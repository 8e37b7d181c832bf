// This CPU's dot-product peaks, for make bench: `peak dot` — 8-bit AVX512-VNNI vpdpbusd (64
// multiply-adds each; 12 independent accumulator chains from registers), GOP/s; `peak maddubs` —
// 8-bit AVX2 vpmaddubsw (32 multiply-adds each, into i16 pairs; 12 chains), GOP/s; `peak amx` — bf16
// AMX tdpbf16ps (16 rows × 32 × 16 multiply-adds each; 4 accumulator tiles, 2 × 2 as the kernels'
// lower/amx.rs), GFLOP/s, after asking Linux for the tile state. Every core runs the loop; 2 ops per
// multiply-add; best of 5. Built by tests/bench/bench.sh (each mode's function for its own
// instructions, nothing else beyond x86-64); run each mode only where the CPU has it.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { DOT_ITERS = 20000000, CHAINS = 12, AMX_ITERS = 2000000 };

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void *dot(void *out) {
    __m512i acc[CHAINS], a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(c);
    for (long i = 0; i < DOT_ITERS; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    __m512i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_epi32(s, acc[c]);
    *(int *)out = _mm512_reduce_add_epi32(s);
    return NULL;
}

__attribute__((target("avx2"))) static void *maddubs(void *out) {
    __m256i acc[CHAINS], a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_epi16(c);
    for (long i = 0; i < DOT_ITERS; i++)
#pragma GCC unroll 16
        for (int c = 0; c < CHAINS; c++) {
            __asm__("" : "+x"(a)); // a new operand each time, as the kernels' weights (no hoisting)
            acc[c] = _mm256_add_epi16(acc[c], _mm256_maddubs_epi16(a, b));
        }
    __m256i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_epi16(s, acc[c]);
    *(int *)out = _mm256_extract_epi16(s, 0);
    return NULL;
}

// palette | start row | reserved[14] | bytes per row of each tile [16] | rows of each tile [16]
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed));
_Static_assert(sizeof(struct tile_config) == 64, "the LDTILECFG layout");

__attribute__((target("amx-tile,amx-bf16"))) static void *amx(void *out) {
    static __thread char buf[4][1024] __attribute__((aligned(64)));
    struct tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) c.colsb[i] = 64, c.rows[i] = 16;
    _tile_loadconfig(&c);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, buf[0], 64); _tile_loadd(5, buf[1], 64); _tile_loadd(6, buf[2], 64); _tile_loadd(7, buf[3], 64);
    for (long i = 0; i < AMX_ITERS; i++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, buf[0], 64);
    _tile_release();
    *(int *)out = buf[0][0];
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "dot";
    int tiles = strcmp(mode, "amx") == 0, avx2 = strcmp(mode, "maddubs") == 0;
    if (tiles && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */)) {
        fprintf(stderr, "peak: Linux did not grant the AMX tile state\n");
        return 1;
    }
    double per_thread = tiles ? 2.0 * 16 * 32 * 16 * 4 * AMX_ITERS : 2.0 * (avx2 ? 32 : 64) * CHAINS * DOT_ITERS;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        pthread_t t[256];
        int sink[256];
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, tiles ? amx : avx2 ? maddubs : dot, &sink[i]);
        for (long i = 0; i < threads; i++) pthread_join(t[i], NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
        if (per_thread * threads / s / 1e9 > best) best = per_thread * threads / s / 1e9;
    }
    printf("%.1f\n", best);
    return 0;
}
