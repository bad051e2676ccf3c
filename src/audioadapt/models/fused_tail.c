/* Fused CPU kernels for the training-mode tail of a CRNN conv block:
 *
 *     p = avgpool(dropout((W h + b) * sigmoid(h))),   h = a * y + c   (BatchNorm with batch statistics)
 *
 * y is the convolution's output in channels-last layout: (batch, frame, freq, channel), channel fastest.
 * The forward pass reads y and the dropout draws once and writes only the pooled output; the backward
 * pass recomputes h, the linear map and the gate from y instead of reading saved activations. Each
 * function works on a range of rows (one row = one batch item and one pooled frame) so that the caller
 * can split the work over threads. Loaded with ctypes by audioadapt/models/fused_tail.py.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float sigmoid_f(float x) {
    x = fminf(fmaxf(x, -88.0f), 88.0f);
    return 1.0f / (1.0f + expf(-x));
}

/* Per-channel sum and sum of squares of pixels [p0, p1) (float partials of 256 pixels, double totals). */
static inline __attribute__((always_inline)) void stats_impl(const float *y, int64_t p0, int64_t p1, int64_t C,
                                                              double *sum, double *sumsq) {
    float s[C], q[C];
    for (int64_t start = p0; start < p1; start += 256) {
        int64_t stop = start + 256 < p1 ? start + 256 : p1;
        for (int64_t j = 0; j < C; j++) s[j] = q[j] = 0.0f;
        for (int64_t p = start; p < stop; p++) {
            const float *yp = y + p * C;
            for (int64_t j = 0; j < C; j++) {
                s[j] += yp[j];
                q[j] += yp[j] * yp[j];
            }
        }
        for (int64_t j = 0; j < C; j++) {
            sum[j] += s[j];
            sumsq[j] += q[j];
        }
    }
}

/* Pixels are processed in groups of GROUP neighbours along the frequency axis, so that the per-pixel
 * chains of multiply-adds of the channel map are independent and can overlap. */
#define GROUP 4

/* The vector width follows the instruction set the kernels are compiled for (-march=native): 16 floats and
 * 32 registers with AVX-512, 8 floats and 16 registers with AVX/AVX2, 4 and 16 otherwise. Vectors wider
 * than the hardware's are split by the compiler into pieces that live in memory: 64-byte vectors on an
 * AVX2 CPU made the kernels 1.5-3x slower than PyTorch's operators. */
#if defined(__AVX512F__)
#define VW 16
#define NREG 32
#elif defined(__AVX__)
#define VW 8
#define NREG 16
#else
#define VW 4
#define NREG 16
#endif
/* accumulator vectors per group pixel and column block: GROUP * NV of them use half the registers, which
 * leaves the rest for the row loads and broadcasts */
#define NV (NREG / 2 / GROUP)

typedef float vf __attribute__((vector_size(4 * VW), aligned(4)));

/* acc[g][j] += sum_i m[i][j] * x[g][i] for the GROUP rows g (m is C x C, row-major).
 * When C is a multiple of VW, the output columns are taken in blocks of NV vectors, whose GROUP x NV
 * accumulators are vector variables: they stay in registers over the loop on i instead of making a
 * load-add-store chain through memory. */
static inline __attribute__((always_inline)) void matvec_acc(const float *m, const float *x, float *acc,
                                                             int64_t C) {
    if (C % VW == 0) {
        const int64_t V = C / VW;
        for (int64_t v0 = 0; v0 < V; v0 += NV) {
            const int64_t nv = V - v0 < NV ? V - v0 : NV;
            vf r[GROUP][NV];
#pragma GCC unroll 4
            for (int64_t g = 0; g < GROUP; g++)
#pragma GCC unroll 4
                for (int64_t v = 0; v < nv; v++) r[g][v] = *(const vf *)(acc + g * C + VW * (v0 + v));
            for (int64_t i = 0; i < C; i++) {
                const vf *row = (const vf *)(m + i * C) + v0;
#pragma GCC unroll 4
                for (int64_t g = 0; g < GROUP; g++) {
                    const float xi = x[g * C + i];
#pragma GCC unroll 4
                    for (int64_t v = 0; v < nv; v++) r[g][v] += row[v] * xi;
                }
            }
#pragma GCC unroll 4
            for (int64_t g = 0; g < GROUP; g++)
#pragma GCC unroll 4
                for (int64_t v = 0; v < nv; v++) *(vf *)(acc + g * C + VW * (v0 + v)) = r[g][v];
        }
        return;
    }
    for (int64_t i = 0; i < C; i++) {
        const float *row = m + i * C;
#pragma GCC unroll 4
        for (int64_t g = 0; g < GROUP; g++) {
            const float xi = x[g * C + i];
            for (int64_t j = 0; j < C; j++) acc[g * C + j] += row[j] * xi;
        }
    }
}

/* acc[k][i] += sum_g a[g][k] * b[g][i] over the GROUP rows g (acc is C x C, row-major).
 * When C is a multiple of VW, b's columns are taken in blocks of NV vectors held in registers, so that each
 * vector of acc is loaded and stored once per call instead of once per row g. */
static inline __attribute__((always_inline)) void outer_acc(const float *a, const float *b, float *acc,
                                                            int64_t C) {
    if (C % VW == 0) {
        const int64_t V = C / VW;
        for (int64_t v0 = 0; v0 < V; v0 += NV) {
            const int64_t nv = V - v0 < NV ? V - v0 : NV;
            vf bv[GROUP][NV];
#pragma GCC unroll 4
            for (int64_t g = 0; g < GROUP; g++)
#pragma GCC unroll 4
                for (int64_t v = 0; v < nv; v++) bv[g][v] = *(const vf *)(b + g * C + VW * (v0 + v));
            for (int64_t k = 0; k < C; k++) {
                vf *dst = (vf *)(acc + k * C) + v0;
#pragma GCC unroll 4
                for (int64_t v = 0; v < nv; v++) {
                    vf r = dst[v];
#pragma GCC unroll 4
                    for (int64_t g = 0; g < GROUP; g++) r += bv[g][v] * a[g * C + k];
                    dst[v] = r;
                }
            }
        }
        return;
    }
    for (int64_t k = 0; k < C; k++) {
        float *acck = acc + k * C;
#pragma GCC unroll 4
        for (int64_t g = 0; g < GROUP; g++) {
            const float ak = a[g * C + k];
            for (int64_t i = 0; i < C; i++) acck[i] += ak * b[g * C + i];
        }
    }
}

/* h, the linear map and the gate of GROUP pixels (pixel g at yp[g]). */
static inline __attribute__((always_inline)) void group_forward(const float *const *yp, const float *a,
                                                                const float *c, const float *wt, const float *b,
                                                                int64_t C, float *h, float *lin, float *sig) {
#pragma GCC unroll 4
    for (int64_t g = 0; g < GROUP; g++) {
        for (int64_t j = 0; j < C; j++) {
            h[g * C + j] = a[j] * yp[g][j] + c[j];
            lin[g * C + j] = b[j];
        }
    }
    matvec_acc(wt, h, lin, C);
#pragma omp simd
    for (int64_t j = 0; j < GROUP * C; j++) sig[j] = sigmoid_f(h[j]);
}

/* Pointers to the GROUP pixels starting at column f0 of an input row; past ``width`` the last is repeated. */
static inline __attribute__((always_inline)) int64_t group_pointers(const float *row, int64_t f0, int64_t width,
                                                                    int64_t C, const float **yp) {
    const int64_t count = width - f0 < GROUP ? width - f0 : GROUP;
    for (int64_t g = 0; g < GROUP; g++) yp[g] = row + (f0 + (g < count ? g : count - 1)) * C;
    return count;
}

/* Pooled output rows [r0, r1) of (batch, T / pt, F / pf, C). draws may be NULL (no dropout). */
static inline __attribute__((always_inline)) void forward_impl(
    const float *y, const float *a, const float *c, const float *wt, const float *b, const int8_t *draws,
    int64_t threshold, float scale, float *out, int64_t T, int64_t F, int64_t C, int64_t pt, int64_t pf,
    int64_t r0, int64_t r1) {
    const int64_t To = T / pt, Fo = F / pf, width = Fo * pf;
    const float inv_area = 1.0f / (float)(pt * pf);
    float h[GROUP * C], lin[GROUP * C], sig[GROUP * C], acc[Fo * C];
    const float *yp[GROUP];
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / To, to = r % To;
        for (int64_t k = 0; k < Fo * C; k++) acc[k] = 0.0f;
        for (int64_t dt = 0; dt < pt; dt++) {
            const int64_t base = (n * T + to * pt + dt) * F; /* first pixel of the input row */
            for (int64_t f0 = 0; f0 < width; f0 += GROUP) {
                const int64_t count = group_pointers(y + base * C, f0, width, C, yp);
                group_forward(yp, a, c, wt, b, C, h, lin, sig);
                for (int64_t g = 0; g < count; g++) {
                    float *dst = acc + ((f0 + g) / pf) * C;
                    const float *lg = lin + g * C, *sg = sig + g * C;
                    if (draws) {
                        const int8_t *d = draws + (base + f0 + g) * C;
                        for (int64_t j = 0; j < C; j++) dst[j] += (d[j] >= threshold ? scale : 0.0f) * lg[j] * sg[j];
                    } else {
                        for (int64_t j = 0; j < C; j++) dst[j] += lg[j] * sg[j];
                    }
                }
            }
        }
        float *o = out + r * Fo * C;
        for (int64_t k = 0; k < Fo * C; k++) o[k] = acc[k] * inv_area;
    }
}

/* Backward over rows [r0, r1): writes dL/dh (before the BatchNorm's own backward) into gh for every
 * pixel the pooling covers, and adds to the double accumulators gw (C x C, gw[j][i] = dL/dW[j][i]), gb,
 * sum_gh (sum of dL/dh) and sum_ghx (sum of dL/dh * xhat, xhat = (y - mean) * invstd). Pixels the
 * pooling drops (trailing frames or bins) are left to the caller (their dL/dh is 0). */
static inline __attribute__((always_inline)) void backward_impl(
    const float *gp, const float *y, const float *a, const float *c, const float *w, const float *wt,
    const float *b, const int8_t *draws, int64_t threshold, float scale, const float *mean, const float *invstd,
    float *gh, double *gw, double *gb, double *sum_gh, double *sum_ghx, int64_t T, int64_t F, int64_t C,
    int64_t pt, int64_t pf, int64_t r0, int64_t r1) {
    const int64_t To = T / pt, Fo = F / pf, width = Fo * pf;
    const float inv_area = 1.0f / (float)(pt * pf);
    float h[GROUP * C], lin[GROUP * C], sig[GROUP * C], glin[GROUP * C], ghv[GROUP * C];
    float gw_row[C * C], gb_row[C], sgh_row[C], sghx_row[C];
    const float *yp[GROUP];
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / To, to = r % To;
        const float *go_row = gp + r * Fo * C;
        memset(gw_row, 0, sizeof(float) * C * C);
        for (int64_t j = 0; j < C; j++) gb_row[j] = sgh_row[j] = sghx_row[j] = 0.0f;
        for (int64_t dt = 0; dt < pt; dt++) {
            const int64_t base = (n * T + to * pt + dt) * F;
            for (int64_t f0 = 0; f0 < width; f0 += GROUP) {
                const int64_t count = group_pointers(y + base * C, f0, width, C, yp);
                group_forward(yp, a, c, wt, b, C, h, lin, sig);
                for (int64_t g = 0; g < GROUP; g++) {
                    float *gl = glin + g * C, *gv = ghv + g * C;
                    const float *lg = lin + g * C, *sg = sig + g * C;
                    if (g >= count) { /* a repeated pixel: no gradient */
                        for (int64_t j = 0; j < C; j++) gl[j] = gv[j] = 0.0f;
                        continue;
                    }
                    const float *go = go_row + ((f0 + g) / pf) * C;
                    const int8_t *d = draws ? draws + (base + f0 + g) * C : 0;
                    for (int64_t j = 0; j < C; j++) {
                        const float gz = go[j] * inv_area * (d ? (d[j] >= threshold ? scale : 0.0f) : 1.0f);
                        gl[j] = gz * sg[j];
                        gv[j] = gz * lg[j] * sg[j] * (1.0f - sg[j]);
                        gb_row[j] += gl[j];
                    }
                }
                matvec_acc(w, glin, ghv, C); /* dL/dh += W^T glin */
                outer_acc(glin, h, gw_row, C); /* dL/dW += glin^T h */
                for (int64_t g = 0; g < count; g++) {
                    const int64_t pix = base + f0 + g;
                    const float *yq = y + pix * C, *gv = ghv + g * C;
                    float *dst = gh + pix * C;
                    for (int64_t i = 0; i < C; i++) {
                        dst[i] = gv[i];
                        sgh_row[i] += gv[i];
                        sghx_row[i] += gv[i] * (yq[i] - mean[i]) * invstd[i];
                    }
                }
            }
        }
        for (int64_t k = 0; k < C * C; k++) gw[k] += gw_row[k];
        for (int64_t j = 0; j < C; j++) {
            gb[j] += gb_row[j];
            sum_gh[j] += sgh_row[j];
            sum_ghx[j] += sghx_row[j];
        }
    }
}

/* In place over pixels [p0, p1): gh = A * gh + B * y + D (the BatchNorm input gradient). */
static inline __attribute__((always_inline)) void input_grad_impl(
    float *gh, const float *y, const float *A, const float *B, const float *D, int64_t p0, int64_t p1, int64_t C) {
    for (int64_t p = p0; p < p1; p++) {
        float *g = gh + p * C;
        const float *yp = y + p * C;
        for (int64_t j = 0; j < C; j++) g[j] = A[j] * g[j] + B[j] * yp[j] + D[j];
    }
}

/* Exported entry points: tail_<kernel>_<C> with the channel count a compile-time constant, so that the
 * per-pixel loops over channels unroll into whole vector registers, and tail_<kernel>_any for any C. */
#define TAIL_ENTRY_POINTS(SUFFIX, CONST_C)                                                                  \
    void tail_stats_##SUFFIX(const float *y, int64_t p0, int64_t p1, int64_t C, double *sum, double *sumsq) { \
        stats_impl(y, p0, p1, CONST_C, sum, sumsq);                                                         \
    }                                                                                                         \
    void tail_forward_##SUFFIX(const float *y, const float *a, const float *c, const float *wt, const float *b, \
                               const int8_t *draws, int64_t threshold, float scale, float *out, int64_t T,     \
                               int64_t F, int64_t C, int64_t pt, int64_t pf, int64_t r0, int64_t r1) {          \
        forward_impl(y, a, c, wt, b, draws, threshold, scale, out, T, F, CONST_C, pt, pf, r0, r1);            \
    }                                                                                                         \
    void tail_backward_##SUFFIX(const float *gp, const float *y, const float *a, const float *c,              \
                                const float *w, const float *wt, const float *b, const int8_t *draws,        \
                                int64_t threshold, float scale, const float *mean, const float *invstd,      \
                                float *gh, double *gw, double *gb, double *sum_gh, double *sum_ghx, int64_t T, \
                                int64_t F, int64_t C, int64_t pt, int64_t pf, int64_t r0, int64_t r1) {         \
        backward_impl(gp, y, a, c, w, wt, b, draws, threshold, scale, mean, invstd, gh, gw, gb, sum_gh,       \
                      sum_ghx, T, F, CONST_C, pt, pf, r0, r1);                                                \
    }                                                                                                         \
    void tail_input_grad_##SUFFIX(float *gh, const float *y, const float *A, const float *B, const float *D,  \
                                  int64_t p0, int64_t p1, int64_t C) {                                        \
        input_grad_impl(gh, y, A, B, D, p0, p1, CONST_C);                                                     \
    }

/* Floats per vector register the kernels were compiled for (VW), so that callers can check the ISA choice. */
int64_t tail_vector_width(void) { return VW; }

TAIL_ENTRY_POINTS(any, C)
TAIL_ENTRY_POINTS(8, 8)
TAIL_ENTRY_POINTS(16, 16)
TAIL_ENTRY_POINTS(32, 32)
TAIL_ENTRY_POINTS(64, 64)
