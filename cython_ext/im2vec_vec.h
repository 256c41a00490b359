/* Loops of the space step that a C compiler vectorises (im2vec_inner.pyx cimports them).
 *
 * Each loop is written so that its result does not depend on the vector width the compiler picks:
 * element-wise arithmetic in float, and every sum or maximum split into IM2VEC_LANES fixed lanes,
 * combined in the same order at the end. The same inputs give the same floats on SSE2 and AVX.
 */
#ifndef IM2VEC_VEC_H
#define IM2VEC_VEC_H

#include <stdint.h>
#include <string.h>

#define IM2VEC_LANES 8

/* GCC keeps a loop with a comparison in it scalar while floating-point traps may be enabled, and
 * Python builds extensions with -fwrapv, which hides a loop's trip count: the loops below say
 * neither matters to them (no trap is ever enabled; no index overflows). */
#if defined(__GNUC__) && !defined(__clang__)
#define IM2VEC_VECTORISE __attribute__((optimize("no-trapping-math", "no-wrapv")))
#else
#define IM2VEC_VECTORISE
#endif

/* The largest of x[0..n) (n >= 1). */
IM2VEC_VECTORISE static inline float im2vec_max(const float *x, int n) {
    float lane[IM2VEC_LANES];
    int k, j;
    float m;
    for (j = 0; j < IM2VEC_LANES; j++)
        lane[j] = x[0];
    for (k = 0; k + IM2VEC_LANES <= n; k += IM2VEC_LANES)
        for (j = 0; j < IM2VEC_LANES; j++)
            lane[j] = x[k + j] > lane[j] ? x[k + j] : lane[j];
    m = lane[0];
    for (j = 1; j < IM2VEC_LANES; j++)
        m = lane[j] > m ? lane[j] : m;
    for (; k < n; k++)
        m = x[k] > m ? x[k] : m;
    return m;
}

/* exp(x) for x <= 0, in float: x = n·ln 2 + r with |r| <= ln 2 / 2, exp(r) by Cephes' degree-6
 * polynomial (relative error about 1e-7), times 2^n built in the exponent bits. Below -87 (where
 * float's normal range ends) it returns exp(-87) ~ 1.6e-38: against the largest term, 1, of a
 * softmax that is nothing. */
IM2VEC_VECTORISE static inline float im2vec_exp_nonpositive(float x) {
    float t, r, p;
    int32_t n, bits;
    float scale;
    x = x < -87.0f ? -87.0f : x;
    t = x * 1.44269504088896341f;
    n = (int32_t)(t - 0.5f); /* round to nearest for t <= 0 (truncation towards zero) */
    r = x - (float)n * 0.693359375f;
    r = r + (float)n * 2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    bits = (n + 127) << 23;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* s[k] = exp(s[k] - m) for k < n (every s[k] <= m); returns their sum, summed in double in
 * IM2VEC_LANES lanes. */
IM2VEC_VECTORISE static inline double im2vec_exp_shift_sum(float *s, int n, float m) {
    double lane[IM2VEC_LANES] = {0};
    double sum = 0.0;
    int k, j;
    for (k = 0; k < n; k++)
        s[k] = im2vec_exp_nonpositive(s[k] - m);
    for (k = 0; k + IM2VEC_LANES <= n; k += IM2VEC_LANES)
        for (j = 0; j < IM2VEC_LANES; j++)
            lane[j] += s[k + j];
    for (j = 0; j < IM2VEC_LANES; j++)
        sum += lane[j];
    for (; k < n; k++)
        sum += s[k];
    return sum;
}

/* The sum of x[j]² in double, in IM2VEC_LANES lanes. */
IM2VEC_VECTORISE static inline double im2vec_sumsq(const float *x, int n) {
    double lane[IM2VEC_LANES] = {0};
    double sum = 0.0;
    int k, j;
    for (k = 0; k + IM2VEC_LANES <= n; k += IM2VEC_LANES)
        for (j = 0; j < IM2VEC_LANES; j++)
            lane[j] += (double)x[k + j] * (double)x[k + j];
    for (j = 0; j < IM2VEC_LANES; j++)
        sum += lane[j];
    for (; k < n; k++)
        sum += (double)x[k] * (double)x[k];
    return sum;
}

/* y[j] = x[j] * a - b[j]. */
IM2VEC_VECTORISE static inline void im2vec_scale_sub(const float *x, float a, const float *b, float *y, int n) {
    int j;
    for (j = 0; j < n; j++)
        y[j] = x[j] * a - b[j];
}

#endif
