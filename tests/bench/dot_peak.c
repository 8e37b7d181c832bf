// This CPU's 8-bit dot-product peak (AVX512-VNNI vpdpbusd, 64 multiply-adds each), for make bench:
// every core runs 12 independent accumulator chains from registers; prints GOP/s (2 ops per
// multiply-add), best of 5. Built by tests/bench/bench.sh with -mavx512vnni; run only where the
// CPU has it.
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

enum { ITERS = 20000000, CHAINS = 12 };

static void *run(void *out) {
    __m512i acc[CHAINS], a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(c);
    for (long i = 0; i < ITERS; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    __m512i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_epi32(s, acc[c]);
    *(int *)out = _mm512_reduce_add_epi32(s);
    return NULL;
}

int main(void) {
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
        double ops = 2.0 * 64 * CHAINS * (double)ITERS * threads / s / 1e9;
        if (ops > best) best = ops;
    }
    printf("%.1f\n", best);
    return 0;
}
