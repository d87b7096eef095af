/*
 * Generates engine/tests/data/fp_vectors.txt: reference results and fflags for the RISC-V F and D
 * instructions, taken from the instructions themselves (run under qemu-riscv64 or on hardware).
 * Every instruction is executed with an explicit static rounding mode, so the file covers all five
 * modes independently of frm.
 *
 * Line format (all numbers hex, no prefix):  OP RM A B C RESULT FFLAGS
 * Unused operands are 0. RM is 0..4 (rne rtz rdn rup rmm), 0 for instructions without rounding.
 * Regenerate with engine/tests/data/regen_fp_vectors.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t u64;

#define CLOBBERS "ft0", "ft1", "ft2", "ft3"
#define ASM(PRE, RM, POST)                                                                        \
    asm volatile("csrw fflags, zero\n" PRE RM "\n" POST "\ncsrr %1, fflags"                       \
                 : "=&r"(res), "=&r"(fl)                                                          \
                 : "r"(a), "r"(b), "r"(c)                                                         \
                 : CLOBBERS)
#define WITH_RM(PRE, POST)                                                                        \
    switch (rm) {                                                                                 \
    case 0: ASM(PRE, ", rne", POST); break;                                                       \
    case 1: ASM(PRE, ", rtz", POST); break;                                                       \
    case 2: ASM(PRE, ", rdn", POST); break;                                                       \
    case 3: ASM(PRE, ", rup", POST); break;                                                       \
    default: ASM(PRE, ", rmm", POST); break;                                                      \
    }
#define OP(NAME, PRE, POST)                                                                       \
    static void NAME(int rm, u64 a, u64 b, u64 c, u64 *out, u64 *flags) {                         \
        u64 res, fl;                                                                              \
        WITH_RM(PRE, POST)                                                                        \
        *out = res;                                                                               \
        *flags = fl;                                                                              \
    }
#define OP0(NAME, PRE, POST)                                                                      \
    static void NAME(int rm, u64 a, u64 b, u64 c, u64 *out, u64 *flags) {                         \
        u64 res, fl;                                                                              \
        (void)rm;                                                                                 \
        ASM(PRE, "", POST);                                                                       \
        *out = res;                                                                               \
        *flags = fl;                                                                              \
    }

#define LS2 "fmv.w.x ft0, %2\nfmv.w.x ft1, %3\n"
#define LS3 LS2 "fmv.w.x ft2, %4\n"
#define LD2 "fmv.d.x ft0, %2\nfmv.d.x ft1, %3\n"
#define LD3 LD2 "fmv.d.x ft2, %4\n"
#define SS "\nfmv.x.w %0, ft3\nslli %0, %0, 32\nsrli %0, %0, 32"
#define SD "\nfmv.x.d %0, ft3"

OP(add_s, LS2 "fadd.s ft3, ft0, ft1", SS)
OP(sub_s, LS2 "fsub.s ft3, ft0, ft1", SS)
OP(mul_s, LS2 "fmul.s ft3, ft0, ft1", SS)
OP(div_s, LS2 "fdiv.s ft3, ft0, ft1", SS)
OP(sqrt_s, LS2 "fsqrt.s ft3, ft0", SS)
OP(fma_s, LS3 "fmadd.s ft3, ft0, ft1, ft2", SS)
OP0(min_s, LS2 "fmin.s ft3, ft0, ft1", SS)
OP0(max_s, LS2 "fmax.s ft3, ft0, ft1", SS)
OP0(eq_s, LS2 "feq.s %0, ft0, ft1", "")
OP0(lt_s, LS2 "flt.s %0, ft0, ft1", "")
OP0(le_s, LS2 "fle.s %0, ft0, ft1", "")
OP0(class_s, LS2 "fclass.s %0, ft0", "")
OP(cvt_w_s, LS2 "fcvt.w.s %0, ft0", "\nslli %0, %0, 32\nsrli %0, %0, 32")
OP(cvt_wu_s, LS2 "fcvt.wu.s %0, ft0", "\nslli %0, %0, 32\nsrli %0, %0, 32")
OP(cvt_l_s, LS2 "fcvt.l.s %0, ft0", "")
OP(cvt_lu_s, LS2 "fcvt.lu.s %0, ft0", "")
OP(cvt_s_w, "fcvt.s.w ft3, %2", SS)
OP(cvt_s_wu, "fcvt.s.wu ft3, %2", SS)
OP(cvt_s_l, "fcvt.s.l ft3, %2", SS)
OP(cvt_s_lu, "fcvt.s.lu ft3, %2", SS)
OP0(cvt_d_s, LS2 "fcvt.d.s ft3, ft0", SD)
OP(cvt_s_d, LD2 "fcvt.s.d ft3, ft0", SS)

OP(add_d, LD2 "fadd.d ft3, ft0, ft1", SD)
OP(sub_d, LD2 "fsub.d ft3, ft0, ft1", SD)
OP(mul_d, LD2 "fmul.d ft3, ft0, ft1", SD)
OP(div_d, LD2 "fdiv.d ft3, ft0, ft1", SD)
OP(sqrt_d, LD2 "fsqrt.d ft3, ft0", SD)
OP(fma_d, LD3 "fmadd.d ft3, ft0, ft1, ft2", SD)
OP0(min_d, LD2 "fmin.d ft3, ft0, ft1", SD)
OP0(max_d, LD2 "fmax.d ft3, ft0, ft1", SD)
OP0(eq_d, LD2 "feq.d %0, ft0, ft1", "")
OP0(lt_d, LD2 "flt.d %0, ft0, ft1", "")
OP0(le_d, LD2 "fle.d %0, ft0, ft1", "")
OP0(class_d, LD2 "fclass.d %0, ft0", "")
OP(cvt_w_d, LD2 "fcvt.w.d %0, ft0", "\nslli %0, %0, 32\nsrli %0, %0, 32")
OP(cvt_wu_d, LD2 "fcvt.wu.d %0, ft0", "\nslli %0, %0, 32\nsrli %0, %0, 32")
OP(cvt_l_d, LD2 "fcvt.l.d %0, ft0", "")
OP(cvt_lu_d, LD2 "fcvt.lu.d %0, ft0", "")
OP0(cvt_d_w, "fcvt.d.w ft3, %2", SD)
OP0(cvt_d_wu, "fcvt.d.wu ft3, %2", SD)
OP(cvt_d_l, "fcvt.d.l ft3, %2", SD)
OP(cvt_d_lu, "fcvt.d.lu ft3, %2", SD)

typedef void (*opfn)(int, u64, u64, u64, u64 *, u64 *);

static void emit(const char *name, opfn f, int rm, u64 a, u64 b, u64 c) {
    u64 r, fl;
    f(rm, a, b, c, &r, &fl);
    printf("%s %d %llx %llx %llx %llx %llx\n", name, rm, (unsigned long long)a,
           (unsigned long long)b, (unsigned long long)c, (unsigned long long)r,
           (unsigned long long)fl);
}

static u64 state = 0x9e3779b97f4a7c15ull;
static u64 rnd(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

/* Edge operands: zeros, subnormals, the normal boundary, values near 1, ties, overflow edge,
 * integer-conversion boundaries, infinities and NaNs (quiet, with payload, signaling). */
static const uint32_t EDGE_S[] = {
    0x00000000, 0x00000001, 0x007fffff, 0x00800000, 0x00800001, 0x3f800000, 0x3f800001,
    0x3fc00000, 0x40200000, 0x3eaaaaab, 0x7f7fffff, 0x7f800000, 0x7fc00000, 0x7f800001,
    0x4f000000, 0x1f800000, 0x00400000, 0x3effffff,
};
static const u64 EDGE_D[] = {
    0x0000000000000000ull, 0x0000000000000001ull, 0x000fffffffffffffull, 0x0010000000000000ull,
    0x0010000000000001ull, 0x3ff0000000000000ull, 0x3ff0000000000001ull, 0x3ff8000000000000ull,
    0x4004000000000000ull, 0x3fd5555555555555ull, 0x7fefffffffffffffull, 0x7ff0000000000000ull,
    0x7ff8000000000000ull, 0x7ff0000000000001ull, 0x43e0000000000000ull, 0x1ff0000000000000ull,
    0x0008000000000000ull, 0x3fdfffffffffffffull,
};
#define NEDGE 18

static u64 edge(int width, int i) {
    /* Indices NEDGE..2*NEDGE-1 are the negated edges. */
    if (width == 32) {
        u64 v = EDGE_S[i % NEDGE];
        return i >= NEDGE ? v | 0x80000000u : v;
    }
    u64 v = EDGE_D[i % NEDGE];
    return i >= NEDGE ? v | 0x8000000000000000ull : v;
}

/* A random operand biased towards the interesting exponent ranges and significand patterns. */
static u64 biased(int width, int exp_lo, int exp_hi) {
    int mbits = width == 32 ? 23 : 52;
    int emax = width == 32 ? 255 : 2047;
    u64 sign = rnd() & 1;
    long e;
    if (exp_lo >= 0) {
        e = exp_lo + (long)(rnd() % (u64)(exp_hi - exp_lo + 1));
    } else {
        switch (rnd() % 8) {
        case 0: e = (long)(rnd() % (u64)emax); break;
        case 1: e = 0; break;
        case 2: e = 1 + (long)(rnd() % 3); break;
        case 3: e = emax - 1 - (long)(rnd() % 3); break;
        case 4: e = rnd() % 16 == 0 ? emax : 0; break;
        default: e = emax / 2 - 4 + (long)(rnd() % 9); break;
        }
    }
    if (e < 0) e = 0;
    if (e > emax) e = emax;
    u64 m = rnd() & ((1ull << mbits) - 1);
    switch (rnd() % 4) {
    case 0: m &= ~((1ull << (rnd() % (unsigned)mbits)) - 1); break; /* few low bits */
    case 1: m |= (1ull << (rnd() % (unsigned)mbits)) - 1; break;    /* trailing ones */
    default: break;
    }
    return (sign << (width - 1)) | ((u64)e << mbits) | m;
}

struct bin { const char *name; opfn f; };

static void width_set(int width) {
    int bias = width == 32 ? 127 : 1023;
    int mbits = width == 32 ? 23 : 52;
    struct bin arith[] = {
        {width == 32 ? "add32" : "add64", width == 32 ? add_s : add_d},
        {width == 32 ? "sub32" : "sub64", width == 32 ? sub_s : sub_d},
        {width == 32 ? "mul32" : "mul64", width == 32 ? mul_s : mul_d},
        {width == 32 ? "div32" : "div64", width == 32 ? div_s : div_d},
    };
    struct bin cmp[] = {
        {width == 32 ? "min32" : "min64", width == 32 ? min_s : min_d},
        {width == 32 ? "max32" : "max64", width == 32 ? max_s : max_d},
        {width == 32 ? "eq32" : "eq64", width == 32 ? eq_s : eq_d},
        {width == 32 ? "lt32" : "lt64", width == 32 ? lt_s : lt_d},
        {width == 32 ? "le32" : "le64", width == 32 ? le_s : le_d},
    };
    const char *sqrt_name = width == 32 ? "sqrt32" : "sqrt64";
    opfn sqrt_f = width == 32 ? sqrt_s : sqrt_d;
    const char *fma_name = width == 32 ? "fma32" : "fma64";
    opfn fma_f = width == 32 ? fma_s : fma_d;

    for (int k = 0; k < 4; k++)
        for (int rm = 0; rm < 5; rm++) {
            /* The edge set is closed under negation, so for add, sub and mul the pairs with
             * i <= j already meet every sign and magnitude combination; div gets all pairs. */
            for (int i = 0; i < 2 * NEDGE; i++)
                for (int j = k == 3 ? 0 : i; j < 2 * NEDGE; j++)
                    emit(arith[k].name, arith[k].f, rm, edge(width, i), edge(width, j), 0);
            for (int n = 0; n < 200; n++) {
                u64 a = biased(width, -1, 0), b;
                switch (n % 3) {
                case 0: b = biased(width, -1, 0); break;
                case 1: {
                    /* Exponents that put the result near the subnormal boundary (mul, div) or
                     * cancel (add, sub). */
                    long ea = (long)((a >> mbits) & (width == 32 ? 0xff : 0x7ff));
                    long target = k == 2 ? 1 - ea + bias - 1 : k == 3 ? ea - 1 + bias - 1 : ea;
                    if (target < 1) target = 1;
                    b = biased(width, (int)(target > 1 ? target - 1 : target), (int)target + 1);
                    break;
                }
                default: b = a ^ (rnd() & 0xff) ^ ((u64)(rnd() & 1) << (width - 1)); break;
                }
                emit(arith[k].name, arith[k].f, rm, a, b, 0);
            }
        }
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 2 * NEDGE; i++)
            for (int j = 0; j < 2 * NEDGE; j++)
                emit(cmp[k].name, cmp[k].f, 0, edge(width, i), edge(width, j), 0);
    for (int i = 0; i < 2 * NEDGE; i++)
        emit(width == 32 ? "classify32" : "classify64", width == 32 ? class_s : class_d, 0,
             edge(width, i), 0, 0);
    for (int rm = 0; rm < 5; rm++) {
        for (int i = 0; i < 2 * NEDGE; i++) emit(sqrt_name, sqrt_f, rm, edge(width, i), 0, 0);
        for (int n = 0; n < 200; n++) emit(sqrt_name, sqrt_f, rm, biased(width, -1, 0), 0, 0);
    }
    for (int rm = 0; rm < 5; rm++)
        for (int n = 0; n < 1000; n++) {
            u64 a, b, c;
            if (n < 300) {
                a = edge(width, (int)(rnd() % (2 * NEDGE)));
                b = edge(width, (int)(rnd() % (2 * NEDGE)));
                c = edge(width, (int)(rnd() % (2 * NEDGE)));
            } else {
                a = biased(width, -1, 0);
                b = biased(width, -1, 0);
                c = biased(width, -1, 0);
                if (n % 3 == 0) {
                    /* c close to -(a*b): massive cancellation. */
                    if (width == 32) {
                        float fa, fb, fc;
                        uint32_t ua = (uint32_t)a, ub = (uint32_t)b, uc;
                        memcpy(&fa, &ua, 4);
                        memcpy(&fb, &ub, 4);
                        fc = -(float)((double)fa * (double)fb);
                        memcpy(&uc, &fc, 4);
                        c = uc ^ (rnd() & 3);
                    } else {
                        double fa, fb, fc;
                        memcpy(&fa, &a, 8);
                        memcpy(&fb, &b, 8);
                        fc = -(fa * fb);
                        memcpy(&c, &fc, 8);
                        c ^= rnd() & 3;
                    }
                }
            }
            emit(fma_name, fma_f, rm, a, b, c);
        }

    /* Float to integer: edges, values around every integer boundary and ties. */
    struct bin f2i[] = {
        {width == 32 ? "f32_to_i32" : "f64_to_i32", width == 32 ? cvt_w_s : cvt_w_d},
        {width == 32 ? "f32_to_u32" : "f64_to_u32", width == 32 ? cvt_wu_s : cvt_wu_d},
        {width == 32 ? "f32_to_i64" : "f64_to_i64", width == 32 ? cvt_l_s : cvt_l_d},
        {width == 32 ? "f32_to_u64" : "f64_to_u64", width == 32 ? cvt_lu_s : cvt_lu_d},
    };
    for (int k = 0; k < 4; k++)
        for (int rm = 0; rm < 5; rm++) {
            for (int i = 0; i < 2 * NEDGE; i++) emit(f2i[k].name, f2i[k].f, rm, edge(width, i), 0, 0);
            for (int n = 0; n < 250; n++) {
                /* Exponents from -2 to 65 around the integer boundaries. */
                u64 v = biased(width, bias - 2, bias + 65);
                emit(f2i[k].name, f2i[k].f, rm, v, 0, 0);
            }
            static const double ties[] = {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.25, -0.75,
                                          2147483647.5, -2147483648.5, 4294967295.5, -1.0};
            for (unsigned t = 0; t < sizeof ties / sizeof ties[0]; t++) {
                u64 v;
                if (width == 32) {
                    float f = (float)ties[t];
                    uint32_t u;
                    memcpy(&u, &f, 4);
                    v = u;
                } else {
                    memcpy(&v, &ties[t], 8);
                }
                emit(f2i[k].name, f2i[k].f, rm, v, 0, 0);
            }
        }
    struct bin i2f[] = {
        {width == 32 ? "i32_to_f32" : "i32_to_f64", width == 32 ? cvt_s_w : cvt_d_w},
        {width == 32 ? "u32_to_f32" : "u32_to_f64", width == 32 ? cvt_s_wu : cvt_d_wu},
        {width == 32 ? "i64_to_f32" : "i64_to_f64", width == 32 ? cvt_s_l : cvt_d_l},
        {width == 32 ? "u64_to_f32" : "u64_to_f64", width == 32 ? cvt_s_lu : cvt_d_lu},
    };
    for (int k = 0; k < 4; k++)
        for (int rm = 0; rm < 5; rm++)
            for (int n = 0; n < 200; n++) {
                u64 v = rnd() >> (rnd() % 64);
                if (n % 4 == 0) v = (u64)-(int64_t)v;
                if (n < 8) v = (u64[]){0, 1, ~0ull, 0x7fffffffull, 0x80000000ull, 0xffffffffull,
                                       0x8000000000000000ull, 0x7fffffffffffffffull}[n];
                /* 32-bit sources take the low word, sign-extended as the register would hold it. */
                if (k == 0) v = (u64)(int64_t)(int32_t)(uint32_t)v;
                if (k == 1) v = (u64)(int64_t)(int32_t)(uint32_t)v;
                emit(i2f[k].name, i2f[k].f, rm, v, 0, 0);
            }
}

int main(void) {
    width_set(32);
    width_set(64);
    for (int i = 0; i < 2 * NEDGE; i++) emit("f32_to_f64", cvt_d_s, 0, edge(32, i), 0, 0);
    for (int n = 0; n < 200; n++) emit("f32_to_f64", cvt_d_s, 0, biased(32, -1, 0), 0, 0);
    for (int rm = 0; rm < 5; rm++) {
        for (int i = 0; i < 2 * NEDGE; i++) emit("f64_to_f32", cvt_s_d, rm, edge(64, i), 0, 0);
        for (int n = 0; n < 400; n++) {
            /* Exponents spanning the f32 range, its subnormals and beyond both ends. */
            u64 v = biased(64, 1023 - 160, 1023 + 130);
            emit("f64_to_f32", cvt_s_d, rm, v, 0, 0);
        }
    }
    return 0;
}
