/* Integer semantics of RV64IM checked through inline assembly, so the compiler cannot fold them:
 * W-op sign extension, division by zero and overflow, the mulh family, shift-amount masking,
 * compares, and immediates. Explicit edge cases are printed one per line; each operation is
 * also run over a fixed grid of operands and summarised as a hash. */
#include <stdint.h>
#include <stdio.h>

#define RR(op, a, b)                                                                      \
    ({                                                                                    \
        uint64_t r_;                                                                      \
        __asm__ volatile(op " %0, %1, %2" : "=r"(r_) : "r"((uint64_t)(a)), "r"((uint64_t)(b))); \
        r_;                                                                               \
    })
#define RI(op, a, imm)                                                                    \
    ({                                                                                    \
        uint64_t r_;                                                                      \
        __asm__ volatile(op " %0, %1, " #imm : "=r"(r_) : "r"((uint64_t)(a)));           \
        r_;                                                                               \
    })

static const uint64_t grid[] = {
    0, 1, 2, 3, 7, 31, 32, 63, 64,
    0x7fffffff, 0x80000000, 0xffffffff, 0x100000000,
    0x123456789abcdef0, 0x8000000000000000, 0x7fffffffffffffff,
    (uint64_t)-1, (uint64_t)-2, (uint64_t)-7, (uint64_t)-0x80000000,
};
#define NGRID (sizeof grid / sizeof grid[0])

static uint64_t fnv(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define GRID(op)                                                              \
    do {                                                                      \
        uint64_t h_ = 0xcbf29ce484222325ULL;                                  \
        for (unsigned i_ = 0; i_ < NGRID; i_++)                               \
            for (unsigned j_ = 0; j_ < NGRID; j_++)                           \
                h_ = fnv(h_, RR(op, grid[i_], grid[j_]));                     \
        printf("grid %-7s %016llx\n", op, (unsigned long long)h_);           \
    } while (0)

#define SHOW(label, expr) printf("%-34s = %016llx\n", label, (unsigned long long)(expr))

int main(void)
{
    /* W ops: 32-bit result sign-extended to 64 bits. */
    SHOW("addw 0x7fffffff+1", RR("addw", 0x7fffffff, 1));
    SHOW("addw 0xffffffff+1", RR("addw", 0xffffffff, 1));
    SHOW("addw upper bits ignored", RR("addw", 0x1234567800000005ULL, 0xabcdef0000000003ULL));
    SHOW("subw 0x80000000-1", RR("subw", 0x80000000, 1));
    SHOW("addiw 0x7fffffff+1", RI("addiw", 0x7fffffff, 1));
    SHOW("addiw 0 (sext.w of 0x80000000)", RI("addiw", 0x80000000, 0));
    SHOW("sllw 1<<31", RR("sllw", 1, 31));
    SHOW("sllw 1<<32 (masked to 0)", RR("sllw", 1, 32));
    SHOW("srlw 0x80000000>>0", RR("srlw", 0x80000000, 0));
    SHOW("srlw 0xffffffff80000000>>1", RR("srlw", 0xffffffff80000000ULL, 1));
    SHOW("sraw 0x80000000>>4", RR("sraw", 0x80000000, 4));
    SHOW("sraw shamt 36 (masked to 4)", RR("sraw", 0x80000000, 36));
    SHOW("slliw 0x40000000<<1", RI("slliw", 0x40000000, 1));
    SHOW("srliw 0xffffffff>>0", RI("srliw", 0xffffffff, 0));
    SHOW("sraiw 0x80000000>>31", RI("sraiw", 0x80000000, 31));
    SHOW("mulw 0x10000*0x10000", RR("mulw", 0x10000, 0x10000));
    SHOW("mulw 0x8000*0x10000", RR("mulw", 0x8000, 0x10000));

    /* Division: no traps; defined results for /0 and overflow. */
    SHOW("div 7/0", RR("div", 7, 0));
    SHOW("divu 7/0", RR("divu", 7, 0));
    SHOW("rem 7%0", RR("rem", 7, 0));
    SHOW("remu 7%0", RR("remu", 7, 0));
    SHOW("div INT64_MIN/-1", RR("div", 0x8000000000000000ULL, -1));
    SHOW("rem INT64_MIN%-1", RR("rem", 0x8000000000000000ULL, -1));
    SHOW("div -7/2 (truncates)", RR("div", -7, 2));
    SHOW("rem -7%2 (sign of dividend)", RR("rem", -7, 2));
    SHOW("divw 7/0", RR("divw", 7, 0));
    SHOW("divuw 7/0", RR("divuw", 7, 0));
    SHOW("remw 7%0", RR("remw", 7, 0));
    SHOW("remw -7%0 (sext of dividend)", RR("remw", 0xfffffff9, 0));
    SHOW("remuw 0x80000000%0", RR("remuw", 0x80000000, 0));
    SHOW("divw INT32_MIN/-1", RR("divw", 0x80000000, -1));
    SHOW("remw INT32_MIN%-1", RR("remw", 0x80000000, -1));
    SHOW("divuw 0xffffffff/1", RR("divuw", 0xffffffff, 1));
    SHOW("divw ignores upper bits", RR("divw", 0x0000000500000006ULL, 0xffffffff00000003ULL));

    /* High multiplies. */
    SHOW("mulh -1*-1", RR("mulh", -1, -1));
    SHOW("mulhu -1*-1", RR("mulhu", -1, -1));
    SHOW("mulhsu -1*-1", RR("mulhsu", -1, -1));
    SHOW("mulh INT64_MIN*INT64_MIN", RR("mulh", 0x8000000000000000ULL, 0x8000000000000000ULL));
    SHOW("mulhsu INT64_MIN*UINT64_MAX", RR("mulhsu", 0x8000000000000000ULL, -1));
    SHOW("mulhu big*big", RR("mulhu", 0x123456789abcdef0ULL, 0xfedcba9876543210ULL));
    SHOW("mul low wraps", RR("mul", 0x123456789abcdef0ULL, 0xfedcba9876543210ULL));

    /* 64-bit shifts mask the amount to 6 bits. */
    SHOW("sll 1<<64 (masked to 0)", RR("sll", 1, 64));
    SHOW("sll 1<<63", RR("sll", 1, 63));
    SHOW("srl INT64_MIN>>63", RR("srl", 0x8000000000000000ULL, 63));
    SHOW("sra INT64_MIN>>63", RR("sra", 0x8000000000000000ULL, 63));
    SHOW("sra shamt 127 (masked to 63)", RR("sra", 0x4000000000000000ULL, 127));
    SHOW("srai -16>>2", RI("srai", -16, 2));

    /* Compares and immediates. */
    SHOW("slt -1<1", RR("slt", -1, 1));
    SHOW("sltu -1<1", RR("sltu", -1, 1));
    SHOW("sltiu x<1 (seqz of 0)", RI("sltiu", 0, 1));
    SHOW("slti -5<-4", RI("slti", -5, -4));
    SHOW("xori -1 (not)", RI("xori", 0x0f0f, -1));
    SHOW("andi sign-extended imm", RI("andi", 0xffffffffffffffffULL, -2048));
    {
        uint64_t r;
        __asm__ volatile("lui %0, 0x80000" : "=r"(r));
        SHOW("lui 0x80000 sign-extends", r);
        __asm__ volatile("li %0, 0x123456789abcdef0" : "=r"(r));
        SHOW("li 64-bit constant", r);
    }

    GRID("add"); GRID("sub"); GRID("sll"); GRID("srl"); GRID("sra");
    GRID("slt"); GRID("sltu"); GRID("xor"); GRID("or"); GRID("and");
    GRID("addw"); GRID("subw"); GRID("sllw"); GRID("srlw"); GRID("sraw");
    GRID("mul"); GRID("mulh"); GRID("mulhsu"); GRID("mulhu");
    GRID("div"); GRID("divu"); GRID("rem"); GRID("remu");
    GRID("mulw"); GRID("divw"); GRID("divuw"); GRID("remw"); GRID("remuw");
    return 0;
}
