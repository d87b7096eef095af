/* RV64FD edge cases, printed as hex bit patterns plus the accrued exception flags of each
 * operation: NaN boxing, canonical NaNs, static and dynamic rounding modes, fcvt saturation,
 * fmin/fmax with signed zeros and signalling NaNs, fclass, fused multiply-add, sqrt,
 * subnormals, and compares. Every operation is inline assembly so nothing is folded. */
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static double dfrom(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static uint32_t sbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float sfrom(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void clear_flags(void) { __asm__ volatile("csrw fflags, zero"); }
static unsigned read_flags(void)
{
    unsigned long f;
    __asm__ volatile("frflags %0" : "=r"(f));
    return (unsigned)f;
}

static const char *flag_names(unsigned f)
{
    static char buf[32];
    buf[0] = 0;
    if (f & 0x10) strcat(buf, "NV ");
    if (f & 0x08) strcat(buf, "DZ ");
    if (f & 0x04) strcat(buf, "OF ");
    if (f & 0x02) strcat(buf, "UF ");
    if (f & 0x01) strcat(buf, "NX ");
    if (!buf[0]) return "-";
    buf[strlen(buf) - 1] = 0;
    return buf;
}

static void show(const char *label, uint64_t bits, unsigned flags, int hexdigits)
{
    printf("%-40s %0*llx  flags=%s\n", label, hexdigits, (unsigned long long)bits,
           flag_names(flags));
}

/* Double-precision binary op with an explicit rounding-mode suffix (may be empty). */
#define D2(label, insn, a, b)                                                          \
    do {                                                                               \
        double r_, a_ = (a), b_ = (b);                                                 \
        clear_flags();                                                                 \
        __asm__ volatile(insn " %0, %1, %2" : "=f"(r_) : "f"(a_), "f"(b_));           \
        unsigned fl_ = read_flags();                                                   \
        show(label, dbits(r_), fl_, 16);                                               \
    } while (0)
#define D2RM(label, insn, rm, a, b)                                                    \
    do {                                                                               \
        double r_, a_ = (a), b_ = (b);                                                 \
        clear_flags();                                                                 \
        __asm__ volatile(insn " %0, %1, %2, " rm : "=f"(r_) : "f"(a_), "f"(b_));      \
        unsigned fl_ = read_flags();                                                   \
        show(label, dbits(r_), fl_, 16);                                               \
    } while (0)
#define S2(label, insn, a, b)                                                          \
    do {                                                                               \
        float r_, a_ = (a), b_ = (b);                                                  \
        clear_flags();                                                                 \
        __asm__ volatile(insn " %0, %1, %2" : "=f"(r_) : "f"(a_), "f"(b_));           \
        unsigned fl_ = read_flags();                                                   \
        show(label, sbits(r_), fl_, 8);                                                \
    } while (0)
/* Float -> integer register conversion or classification with rounding suffix text. */
#define D2X(label, insn, a)                                                            \
    do {                                                                               \
        uint64_t r_;                                                                   \
        double a_ = (a);                                                               \
        clear_flags();                                                                 \
        __asm__ volatile(insn : "=r"(r_) : "f"(a_));                                   \
        unsigned fl_ = read_flags();                                                   \
        show(label, r_, fl_, 16);                                                      \
    } while (0)
#define S2X(label, insn, a)                                                            \
    do {                                                                               \
        uint64_t r_;                                                                   \
        float a_ = (a);                                                                \
        clear_flags();                                                                 \
        __asm__ volatile(insn : "=r"(r_) : "f"(a_));                                   \
        unsigned fl_ = read_flags();                                                   \
        show(label, r_, fl_, 16);                                                      \
    } while (0)
#define D1(label, insn, a)                                                             \
    do {                                                                               \
        double r_, a_ = (a);                                                           \
        clear_flags();                                                                 \
        __asm__ volatile(insn " %0, %1" : "=f"(r_) : "f"(a_));                        \
        unsigned fl_ = read_flags();                                                   \
        show(label, dbits(r_), fl_, 16);                                               \
    } while (0)
#define FCMP(label, insn, a, b)                                                        \
    do {                                                                               \
        uint64_t r_;                                                                   \
        double a_ = (a), b_ = (b);                                                     \
        clear_flags();                                                                 \
        __asm__ volatile(insn " %0, %1, %2" : "=r"(r_) : "f"(a_), "f"(b_));           \
        unsigned fl_ = read_flags();                                                   \
        show(label, r_, fl_, 1);                                                       \
    } while (0)

#define QNAN_D 0x7ff8000000000000ULL
#define SNAN_D 0x7ff0000000000001ULL
#define PNAN_D 0xfff800000000beefULL /* negative quiet NaN with a payload */
#define SNAN_S 0x7f800001U
#define QNAN_S 0x7fc00000U

static void nan_boxing(void)
{
    uint64_t r;
    float f;
    /* A single in a double register is valid only if the upper 32 bits are all ones. */
    uint64_t boxed = 0xffffffff3f800000ULL, unboxed = 0x000000003f800000ULL;
    __asm__ volatile("fmv.d.x ft0, %1\n\tfadd.s %0, ft0, ft0" : "=f"(f) : "r"(boxed) : "ft0");
    show("boxed 1.0f + itself", sbits(f), 0, 8);
    __asm__ volatile("fmv.d.x ft0, %1\n\tfadd.s %0, ft0, ft0" : "=f"(f) : "r"(unboxed) : "ft0");
    show("unboxed 1.0f + itself (canonical NaN)", sbits(f), 0, 8);
    __asm__ volatile("fmv.w.x ft0, %1\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(0x3f800000UL) : "ft0");
    show("fmv.w.x then fmv.x.d (boxed)", r, 0, 16);
    __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.x.w %0, ft0" : "=r"(r) : "r"(0x12345678cafef00dULL) : "ft0");
    show("fmv.x.w of unboxed (low bits, sext)", r, 0, 16);
    __asm__ volatile("fmv.d.x ft0, %1\n\tfcvt.d.s ft1, ft0\n\tfmv.x.d %0, ft1" : "=r"(r)
                     : "r"(unboxed) : "ft0", "ft1");
    show("fcvt.d.s of unboxed", r, 0, 16);
    __asm__ volatile("fmv.d.x ft0, %1\n\tfsgnj.s ft1, ft0, ft0\n\tfmv.x.d %0, ft1" : "=r"(r)
                     : "r"(unboxed) : "ft0", "ft1");
    show("fsgnj.s of unboxed", r, 0, 16);
    __asm__ volatile("flw ft0, %1\n\tfmv.x.d %0, ft0" : "=r"(r) : "m"(f) : "ft0");
    show("flw result is boxed", r >> 32, 0, 8);
}

static void canonical_nan(void)
{
    D2("0/0 double", "fdiv.d", 0.0, 0.0);
    S2("0/0 single", "fdiv.s", 0.0f, 0.0f);
    D2("inf-inf", "fsub.d", INFINITY, INFINITY);
    D2("0*inf", "fmul.d", 0.0, INFINITY);
    D2("payload NaN + 1 (not propagated)", "fadd.d", dfrom(PNAN_D), 1.0);
    D2("sNaN + 1", "fadd.d", dfrom(SNAN_D), 1.0);
    S2("sNaN + 1 single", "fadd.s", sfrom(SNAN_S), 1.0f);
    D2("fsgnjn of payload NaN (keeps payload)", "fsgnjn.d", dfrom(PNAN_D), dfrom(PNAN_D));
    D2("fsgnjx -1 by -2", "fsgnjx.d", -1.0, -2.0);
    D2("fsgnj 3 by -0", "fsgnj.d", 3.0, -0.0);
    {
        double r;
        float s = sfrom(SNAN_S);
        clear_flags();
        __asm__ volatile("fcvt.d.s %0, %1" : "=f"(r) : "f"(s));
        unsigned fl = read_flags();
        show("fcvt.d.s sNaN", dbits(r), fl, 16);
        float t;
        double d = dfrom(PNAN_D);
        clear_flags();
        __asm__ volatile("fcvt.s.d %0, %1" : "=f"(t) : "f"(d));
        fl = read_flags();
        show("fcvt.s.d payload NaN", sbits(t), fl, 8);
    }
}

static void rounding_static(void)
{
    static const char *const modes[] = {"rne", "rtz", "rdn", "rup", "rmm"};
    static const double conv[] = {2.5, -2.5, 3.5, -0.5, 0.5, 1.4999999999999998};
    char label[64];
    for (int m = 0; m < 5; m++) {
        for (unsigned i = 0; i < sizeof conv / sizeof conv[0]; i++) {
            uint64_t r;
            double a = conv[i];
            clear_flags();
            switch (m) {
            case 0: __asm__ volatile("fcvt.l.d %0, %1, rne" : "=r"(r) : "f"(a)); break;
            case 1: __asm__ volatile("fcvt.l.d %0, %1, rtz" : "=r"(r) : "f"(a)); break;
            case 2: __asm__ volatile("fcvt.l.d %0, %1, rdn" : "=r"(r) : "f"(a)); break;
            case 3: __asm__ volatile("fcvt.l.d %0, %1, rup" : "=r"(r) : "f"(a)); break;
            default: __asm__ volatile("fcvt.l.d %0, %1, rmm" : "=r"(r) : "f"(a)); break;
            }
            unsigned fl = read_flags();
            snprintf(label, sizeof label, "fcvt.l.d %s %.17g", modes[m], a);
            show(label, r, fl, 16);
        }
    }
    D2RM("1/3 rne", "fdiv.d", "rne", 1.0, 3.0);
    D2RM("1/3 rtz", "fdiv.d", "rtz", 1.0, 3.0);
    D2RM("1/3 rdn", "fdiv.d", "rdn", 1.0, 3.0);
    D2RM("1/3 rup", "fdiv.d", "rup", 1.0, 3.0);
    D2RM("1/3 rmm", "fdiv.d", "rmm", 1.0, 3.0);
    D2RM("-1/3 rdn", "fdiv.d", "rdn", -1.0, 3.0);
    D2RM("-1/3 rup", "fdiv.d", "rup", -1.0, 3.0);
    D2RM("1+2^-53 rne (tie to even)", "fadd.d", "rne", 1.0, 0x1p-53);
    D2RM("1+2^-53 rmm (tie away)", "fadd.d", "rmm", 1.0, 0x1p-53);
    D2RM("1+2^-53 rup", "fadd.d", "rup", 1.0, 0x1p-53);
    D2RM("max*2 rtz (no inf)", "fmul.d", "rtz", 1.7976931348623157e308, 2.0);
    D2RM("max*2 rne (inf)", "fmul.d", "rne", 1.7976931348623157e308, 2.0);
    D2RM("-max*2 rup (-max)", "fmul.d", "rup", -1.7976931348623157e308, 2.0);
    D2RM("1-1 rdn (-0)", "fsub.d", "rdn", 1.0, 1.0);
    D2RM("1-1 rne (+0)", "fsub.d", "rne", 1.0, 1.0);
}

static void rounding_dynamic(void)
{
    static const int modes[] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};
    static const char *const names[] = {"FE_TONEAREST", "FE_TOWARDZERO", "FE_DOWNWARD",
                                        "FE_UPWARD"};
    char label[64];
    for (int m = 0; m < 4; m++) {
        int rc = fesetround(modes[m]);
        unsigned long frm;
        __asm__ volatile("frrm %0" : "=r"(frm));
        printf("fesetround(%s)=%d fegetround matches=%s frm=%lu\n", names[m], rc,
               fegetround() == modes[m] ? "yes" : "no", frm);
        snprintf(label, sizeof label, "dyn 1/3 %s", names[m]);
        D2(label, "fdiv.d", 1.0, 3.0);
        snprintf(label, sizeof label, "dyn -1/3 %s", names[m]);
        D2(label, "fdiv.d", -1.0, 3.0);
        snprintf(label, sizeof label, "dyn 1-1 %s", names[m]);
        D2(label, "fsub.d", 1.0, 1.0);
        snprintf(label, sizeof label, "dyn fcvt.w.d -2.5 %s", names[m]);
        D2X(label, "fcvt.w.d %0, %1", -2.5);
        volatile double x = 2.5, y = -3.5;
        printf("rint(2.5)=%.1f nearbyint(-3.5)=%.1f under %s\n", rint(x), nearbyint(y),
               names[m]);
    }
    printf("fesetround(invalid)=%s\n", fesetround(0x7777) != 0 ? "error" : "accepted");
    fesetround(FE_TONEAREST);
    /* frm can also be written directly; an invalid frm makes dyn-rounded ops illegal, so
     * only valid values are written here. */
    __asm__ volatile("fsrmi 3");
    D2("fsrmi 3 (rup) then dyn 2/3", "fdiv.d", 2.0, 3.0);
    __asm__ volatile("fsrmi 0");
    D2("fsrmi 0 then dyn 2/3", "fdiv.d", 2.0, 3.0);
}

static void flags_via_fenv(void)
{
    struct { const char *name; double a, b; int op; } cases[] = {
        {"sqrt(-1)", -1.0, 0, 0}, {"1/0", 1.0, 0.0, 1}, {"max*max", 1e308, 1e308, 2},
        {"tiny*tiny", 1e-308, 1e-308, 2}, {"1/3", 1.0, 3.0, 1}, {"2*3", 2.0, 3.0, 2},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        feclearexcept(FE_ALL_EXCEPT);
        volatile double a = cases[i].a, b = cases[i].b, r;
        if (cases[i].op == 0)
            r = sqrt(a);
        else if (cases[i].op == 1)
            r = a / b;
        else
            r = a * b;
        (void)r;
        int e = fetestexcept(FE_ALL_EXCEPT);
        printf("fetestexcept after %-10s: %s%s%s%s%s\n", cases[i].name,
               e & FE_INVALID ? "FE_INVALID " : "", e & FE_DIVBYZERO ? "FE_DIVBYZERO " : "",
               e & FE_OVERFLOW ? "FE_OVERFLOW " : "", e & FE_UNDERFLOW ? "FE_UNDERFLOW " : "",
               e & FE_INEXACT ? "FE_INEXACT" : "");
    }
    /* Flags accumulate until cleared; fsflags swaps the old value out. */
    clear_flags();
    volatile double z = 0.0, one = 1.0, three = 3.0, r;
    r = one / z;
    r = one / three;
    (void)r;
    unsigned long old;
    __asm__ volatile("fsflags %0, %1" : "=r"(old) : "r"(0x10UL));
    printf("accumulated flags %s", flag_names((unsigned)old));
    printf(", after fsflags(NV) %s\n", flag_names(read_flags()));
    feraiseexcept(FE_OVERFLOW);
    printf("after feraiseexcept(FE_OVERFLOW) %s\n", flag_names(read_flags()));
    unsigned long fcsr;
    __asm__ volatile("frcsr %0" : "=r"(fcsr));
    printf("fcsr=%02lx\n", fcsr);
    clear_flags();
}

static void conversions(void)
{
    const double inf = INFINITY, nan = dfrom(QNAN_D);
    D2X("fcvt.w.d NaN", "fcvt.w.d %0, %1, rtz", nan);
    D2X("fcvt.w.d +inf", "fcvt.w.d %0, %1, rtz", inf);
    D2X("fcvt.w.d -inf", "fcvt.w.d %0, %1, rtz", -inf);
    D2X("fcvt.w.d 1e10", "fcvt.w.d %0, %1, rtz", 1e10);
    D2X("fcvt.w.d -1e10", "fcvt.w.d %0, %1, rtz", -1e10);
    D2X("fcvt.w.d 2147483647.9 rtz", "fcvt.w.d %0, %1, rtz", 2147483647.9);
    D2X("fcvt.w.d -2147483648.5 rtz", "fcvt.w.d %0, %1, rtz", -2147483648.5);
    D2X("fcvt.wu.d NaN", "fcvt.wu.d %0, %1, rtz", nan);
    D2X("fcvt.wu.d -1", "fcvt.wu.d %0, %1, rtz", -1.0);
    D2X("fcvt.wu.d -0.5 rtz", "fcvt.wu.d %0, %1, rtz", -0.5);
    D2X("fcvt.wu.d 4294967295 (sext)", "fcvt.wu.d %0, %1, rtz", 4294967295.0);
    D2X("fcvt.wu.d 5e9", "fcvt.wu.d %0, %1, rtz", 5e9);
    D2X("fcvt.l.d NaN", "fcvt.l.d %0, %1, rtz", nan);
    D2X("fcvt.l.d -inf", "fcvt.l.d %0, %1, rtz", -inf);
    D2X("fcvt.l.d 2^63", "fcvt.l.d %0, %1, rtz", 0x1p63);
    D2X("fcvt.l.d -2^63", "fcvt.l.d %0, %1, rtz", -0x1p63);
    D2X("fcvt.lu.d NaN", "fcvt.lu.d %0, %1, rtz", nan);
    D2X("fcvt.lu.d 2^64", "fcvt.lu.d %0, %1, rtz", 0x1p64);
    D2X("fcvt.lu.d -inf", "fcvt.lu.d %0, %1, rtz", -inf);
    D2X("fcvt.lu.d -0.0", "fcvt.lu.d %0, %1, rtz", -0.0);
    S2X("fcvt.w.s NaN", "fcvt.w.s %0, %1, rtz", sfrom(QNAN_S));
    S2X("fcvt.w.s -3e9", "fcvt.w.s %0, %1, rtz", -3e9f);
    S2X("fcvt.lu.s -inf", "fcvt.lu.s %0, %1, rtz", -INFINITY);
    {
        double r;
        uint64_t big = 0xffffffffffffffffULL;
        clear_flags();
        __asm__ volatile("fcvt.d.lu %0, %1" : "=f"(r) : "r"(big));
        show("fcvt.d.lu UINT64_MAX", dbits(r), read_flags(), 16);
        int64_t neg = -3;
        clear_flags();
        __asm__ volatile("fcvt.d.w %0, %1" : "=f"(r) : "r"(neg));
        show("fcvt.d.w -3", dbits(r), read_flags(), 16);
        float s;
        clear_flags();
        __asm__ volatile("fcvt.s.l %0, %1" : "=f"(s) : "r"((int64_t)0x7fffffffffffffffLL));
        show("fcvt.s.l INT64_MAX", sbits(s), read_flags(), 8);
        clear_flags();
        __asm__ volatile("fcvt.s.d %0, %1" : "=f"(s) : "f"(1e300));
        show("fcvt.s.d 1e300", sbits(s), read_flags(), 8);
        clear_flags();
        __asm__ volatile("fcvt.s.d %0, %1" : "=f"(s) : "f"(1e-300));
        show("fcvt.s.d 1e-300", sbits(s), read_flags(), 8);
    }
}

static void minmax(void)
{
    D2("fmin.d -0,+0", "fmin.d", -0.0, 0.0);
    D2("fmin.d +0,-0", "fmin.d", 0.0, -0.0);
    D2("fmax.d -0,+0", "fmax.d", -0.0, 0.0);
    D2("fmax.d +0,-0", "fmax.d", 0.0, -0.0);
    D2("fmin.d qNaN,1", "fmin.d", dfrom(QNAN_D), 1.0);
    D2("fmax.d 1,qNaN", "fmax.d", 1.0, dfrom(QNAN_D));
    D2("fmin.d sNaN,1", "fmin.d", dfrom(SNAN_D), 1.0);
    D2("fmax.d payload NaN,payload NaN", "fmax.d", dfrom(PNAN_D), dfrom(PNAN_D));
    D2("fmin.d sNaN,sNaN", "fmin.d", dfrom(SNAN_D), dfrom(SNAN_D));
    S2("fmin.s -0,+0", "fmin.s", -0.0f, 0.0f);
    S2("fmax.s sNaN,-2", "fmax.s", sfrom(SNAN_S), -2.0f);
    S2("fmax.s qNaN,qNaN", "fmax.s", sfrom(QNAN_S), sfrom(QNAN_S));
}

static void classify(void)
{
    static const struct { const char *name; uint64_t bits; } d[] = {
        {"-inf", 0xfff0000000000000ULL}, {"-1.0", 0xbff0000000000000ULL},
        {"-subnormal", 0x8000000000000001ULL}, {"-0", 0x8000000000000000ULL},
        {"+0", 0}, {"+subnormal", 0x000fffffffffffffULL}, {"+1.0", 0x3ff0000000000000ULL},
        {"+inf", 0x7ff0000000000000ULL}, {"sNaN", SNAN_D}, {"qNaN", QNAN_D},
        {"-qNaN payload", PNAN_D},
    };
    for (unsigned i = 0; i < sizeof d / sizeof d[0]; i++) {
        uint64_t r;
        double a = dfrom(d[i].bits);
        __asm__ volatile("fclass.d %0, %1" : "=r"(r) : "f"(a));
        printf("fclass.d %-14s = 0x%03llx\n", d[i].name, (unsigned long long)r);
    }
    static const struct { const char *name; uint32_t bits; } s[] = {
        {"-inf", 0xff800000U}, {"-subnormal", 0x80000001U}, {"+0", 0}, {"+1.0", 0x3f800000U},
        {"sNaN", SNAN_S}, {"qNaN", QNAN_S},
    };
    for (unsigned i = 0; i < sizeof s / sizeof s[0]; i++) {
        uint64_t r;
        float a = sfrom(s[i].bits);
        __asm__ volatile("fclass.s %0, %1" : "=r"(r) : "f"(a));
        printf("fclass.s %-14s = 0x%03llx\n", s[i].name, (unsigned long long)r);
    }
    uint64_t r;
    __asm__ volatile("fmv.d.x ft0, %1\n\tfclass.s %0, ft0" : "=r"(r) : "r"(0x3f800000UL) : "ft0");
    printf("fclass.s %-14s = 0x%03llx\n", "unboxed 1.0", (unsigned long long)r);
}

#define FMA(label, insn, a, b, c)                                                      \
    do {                                                                               \
        double r_, a_ = (a), b_ = (b), c_ = (c);                                       \
        clear_flags();                                                                 \
        __asm__ volatile(insn " %0, %1, %2, %3" : "=f"(r_) : "f"(a_), "f"(b_), "f"(c_)); \
        unsigned fl_ = read_flags();                                                   \
        show(label, dbits(r_), fl_, 16);                                               \
    } while (0)

static void fused(void)
{
    double a = 1.0 + 0x1p-52, b = 1.0 - 0x1p-52;
    FMA("fmadd (1+e)(1-e)-1 single rounding", "fmadd.d", a, b, -1.0);
    D2("fmul (1+e)(1-e) then", "fmul.d", a, b);
    FMA("fmsub 2*3-1", "fmsub.d", 2.0, 3.0, 1.0);
    FMA("fnmadd 2*3+1", "fnmadd.d", 2.0, 3.0, 1.0);
    FMA("fnmsub 2*3-1", "fnmsub.d", 2.0, 3.0, 1.0);
    FMA("fmadd inf*0+qNaN (NV)", "fmadd.d", INFINITY, 0.0, dfrom(QNAN_D));
    FMA("fmadd 1*1+sNaN", "fmadd.d", 1.0, 1.0, dfrom(SNAN_D));
    FMA("fmadd inf*1-inf", "fmadd.d", INFINITY, 1.0, -INFINITY);
    FMA("fmadd -0*0+0 (+0)", "fmadd.d", -0.0, 0.0, 0.0);
    FMA("fmadd -0*0-0 (-0)", "fmadd.d", -0.0, 0.0, -0.0);
    {
        float r, x = 1.0f + 0x1p-23f, y = 1.0f - 0x1p-23f, z = -1.0f;
        clear_flags();
        __asm__ volatile("fmadd.s %0, %1, %2, %3" : "=f"(r) : "f"(x), "f"(y), "f"(z));
        show("fmadd.s (1+e)(1-e)-1", sbits(r), read_flags(), 8);
    }
    volatile double p = 0.1, q = 10.0, s = -1.0;
    printf("libm fma(0.1,10,-1) = %016llx\n", (unsigned long long)dbits(fma(p, q, s)));
}

static void roots_and_subnormals(void)
{
    D1("fsqrt 2", "fsqrt.d", 2.0);
    D1("fsqrt -0", "fsqrt.d", -0.0);
    D1("fsqrt -1", "fsqrt.d", -1.0);
    D1("fsqrt +inf", "fsqrt.d", INFINITY);
    D1("fsqrt min subnormal", "fsqrt.d", dfrom(1));
    D1("fsqrt 4 (exact)", "fsqrt.d", 4.0);
    {
        float r, a = 2.0f;
        clear_flags();
        __asm__ volatile("fsqrt.s %0, %1" : "=f"(r) : "f"(a));
        show("fsqrt.s 2", sbits(r), read_flags(), 8);
    }
    D2("min subnormal * 0.5 (to 0)", "fmul.d", dfrom(1), 0.5);
    D2("min subnormal * 0.75 (rounds up)", "fmul.d", dfrom(1), 0.75);
    D2("min normal / 2 (exact subnormal)", "fdiv.d", 0x1p-1022, 2.0);
    D2("min normal / 3 (inexact subnormal)", "fdiv.d", 0x1p-1022, 3.0);
    D2("subnormal + subnormal", "fadd.d", dfrom(0x0008000000000000ULL), dfrom(0x0008000000000000ULL));
    D2("max subnormal + min subnormal", "fadd.d", dfrom(0x000fffffffffffffULL), dfrom(1));
    S2("min single subnormal * 0.5", "fmul.s", sfrom(1), 0.5f);
    S2("single 1e-38 * 1e-3", "fmul.s", 1e-38f, 1e-3f);
}

static void compares(void)
{
    double q = dfrom(QNAN_D), s = dfrom(SNAN_D);
    FCMP("feq qNaN,qNaN", "feq.d", q, q);
    FCMP("feq sNaN,1", "feq.d", s, 1.0);
    FCMP("flt qNaN,1", "flt.d", q, 1.0);
    FCMP("fle 1,qNaN", "fle.d", 1.0, q);
    FCMP("feq -0,+0", "feq.d", -0.0, 0.0);
    FCMP("flt -0,+0", "flt.d", -0.0, 0.0);
    FCMP("fle -inf,-max", "fle.d", -INFINITY, -1.7976931348623157e308);
}

int main(void)
{
    printf("-- nan boxing\n");
    nan_boxing();
    printf("-- canonical nan\n");
    canonical_nan();
    printf("-- static rounding\n");
    rounding_static();
    printf("-- dynamic rounding\n");
    rounding_dynamic();
    printf("-- exception flags\n");
    flags_via_fenv();
    printf("-- conversions\n");
    conversions();
    printf("-- min/max\n");
    minmax();
    printf("-- fclass\n");
    classify();
    printf("-- fused multiply-add\n");
    fused();
    printf("-- sqrt and subnormals\n");
    roots_and_subnormals();
    printf("-- compares\n");
    compares();
    return 0;
}
