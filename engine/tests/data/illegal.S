# Reserved and undefined encodings, for the decoder's golden test (see regen-golden.sh).
#
# Every encoding here must decode to Op::Illegal. objdump prints most of them as raw data, but
# it accepts a few that the spec reserves (noted below); regen-golden.sh lists those when it runs.

	.text

# Compressed.
	.insn	2, 0x0000	# All zeros: defined to be illegal forever.
	.insn	2, 0x0004	# C.ADDI4SPN with nzuimm = 0.
	.insn	2, 0x0010	# C.ADDI4SPN with nzuimm = 0, rd' = x12.
	.insn	2, 0x8000	# Quadrant 0, funct3 100: reserved.
	.insn	2, 0x9c1c	# Quadrant 0, funct3 100, other bits set.
	.insn	2, 0x2001	# C.ADDIW with rd = 0.
	.insn	2, 0x207d	# C.ADDIW with rd = 0 and an immediate.
	.insn	2, 0x6101	# C.ADDI16SP with nzimm = 0 (objdump accepts it).
	.insn	2, 0x6001	# C.LUI with rd = 0 and nzimm = 0.
	.insn	2, 0x6501	# C.LUI with nzimm = 0.
	.insn	2, 0x9c41	# CA group, bit 12 set, funct2 10: reserved.
	.insn	2, 0x9c61	# CA group, bit 12 set, funct2 11: reserved.
	.insn	2, 0x4002	# C.LWSP with rd = 0.
	.insn	2, 0x507e	# C.LWSP with rd = 0 and an offset.
	.insn	2, 0x6002	# C.LDSP with rd = 0.
	.insn	2, 0x8002	# C.JR with rs1 = 0.

# 32-bit, by opcode.
	.insn	4, 0x0000a067	# JALR with funct3 != 0.
	.insn	4, 0x00002063	# BRANCH funct3 010.
	.insn	4, 0x00003063	# BRANCH funct3 011.
	.insn	4, 0x00007003	# LOAD funct3 111.
	.insn	4, 0x00004023	# STORE funct3 100.
	.insn	4, 0x00007023	# STORE funct3 111.
	.insn	4, 0x40051513	# SLLI with imm[11:6] = 0x10.
	.insn	4, 0x08055513	# SRLI with imm[11:6] = 0x02.
	.insn	4, 0x60055513	# SRAI with imm[11:6] = 0x18.
	.insn	4, 0x0205151b	# SLLIW with shamt[5] = 1.
	.insn	4, 0x0205551b	# SRLIW with shamt[5] = 1.
	.insn	4, 0x4205551b	# SRAIW with shamt[5] = 1.
	.insn	4, 0x4000151b	# SLLIW with funct7 0x20.
	.insn	4, 0x0000251b	# OP-IMM-32 funct3 010.
	.insn	4, 0x40001033	# OP: SUB's funct7 with SLL's funct3.
	.insn	4, 0x08000033	# OP with funct7 0x04.
	.insn	4, 0x8000003b	# OP-32 with funct7 0x40.
	.insn	4, 0x0000203b	# OP-32 funct3 010.
	.insn	4, 0x4000103b	# OP-32: SUBW's funct7 with SLLW's funct3.
	.insn	4, 0x0200103b	# OP-32: M funct7 with funct3 001 (no MULHW).
	.insn	4, 0x0000200f	# MISC-MEM funct3 010.
	.insn	4, 0x00004073	# SYSTEM funct3 100.
	.insn	4, 0x00200073	# URET: the N extension is gone (objdump accepts it).
	.insn	4, 0x10500073	# WFI: privileged (objdump accepts it).
	.insn	4, 0x30200073	# MRET: privileged (objdump accepts it).
	.insn	4, 0x00100473	# EBREAK with rd != 0.
	.insn	4, 0x00008073	# ECALL with rs1 != 0.
	.insn	4, 0x0000002f	# AMO funct3 000.
	.insn	4, 0x0000402f	# AMO funct3 100.
	.insn	4, 0x1015a52f	# LR.W with rs2 != 0.
	.insn	4, 0x1015b52f	# LR.D with rs2 != 0.
	.insn	4, 0x2805a52f	# AMO funct5 00101.
	.insn	4, 0xf805b52f	# AMO funct5 11111.
	.insn	4, 0x00001007	# LOAD-FP funct3 001 (FLH is Zfh).
	.insn	4, 0x00004007	# LOAD-FP funct3 100 (FLQ is Q).
	.insn	4, 0x00001027	# STORE-FP funct3 001.
	.insn	4, 0x04000043	# FMADD with fmt 10 (half).
	.insn	4, 0x06000047	# FMSUB with fmt 11 (quad).
	.insn	4, 0x0600004b	# FNMSUB with fmt 11.
	.insn	4, 0x0400004f	# FNMADD with fmt 10.
	.insn	4, 0x04000053	# FADD.H (fmt 10).
	.insn	4, 0x06000053	# FADD.Q (fmt 11).
	.insn	4, 0x58100053	# FSQRT.S with rs2 != 0.
	.insn	4, 0x5a100053	# FSQRT.D with rs2 != 0.
	.insn	4, 0x20003053	# FSGNJ.S with funct3 011.
	.insn	4, 0x22007053	# FSGNJ.D with funct3 111.
	.insn	4, 0x28002053	# FMIN.S with funct3 010.
	.insn	4, 0x2a003053	# FMIN.D with funct3 011.
	.insn	4, 0xa0003053	# FEQ.S group with funct3 011.
	.insn	4, 0xa2007053	# FEQ.D group with funct3 111.
	.insn	4, 0x40000053	# FCVT.S.D with rs2 = 0.
	.insn	4, 0x40200053	# FCVT.S.D with rs2 = 2.
	.insn	4, 0x42100053	# FCVT.D.S with rs2 = 1.
	.insn	4, 0xc0400053	# FCVT.W.S with rs2 = 4.
	.insn	4, 0xc2500053	# FCVT.W.D with rs2 = 5.
	.insn	4, 0xd0400053	# FCVT.S.W with rs2 = 4.
	.insn	4, 0xd2f00053	# FCVT.D.W with rs2 = 15.
	.insn	4, 0xe0002053	# FMV.X.W group with funct3 010.
	.insn	4, 0xe2002053	# FMV.X.D group with funct3 010.
	.insn	4, 0xe0100053	# FMV.X.W with rs2 != 0.
	.insn	4, 0xe2101053	# FCLASS.D with rs2 != 0.
	.insn	4, 0xf0001053	# FMV.W.X with funct3 001.
	.insn	4, 0xf2100053	# FMV.D.X with rs2 != 0.
	.insn	4, 0xf4000053	# FMV.H.X (fmt 10).
	.insn	4, 0x80000053	# OP-FP funct7 0x40.
	.insn	4, 0x0000005b	# Custom-2 opcode.
	.insn	4, 0x0000000b	# Custom-0 opcode.
	.insn	4, 0x00000057	# OP-V (not in RV64GC).
	.insn	4, 0x00000077	# Reserved opcode 1110111.

# Longer-instruction prefixes, emitted as data because .insn refuses them.
	.word	0xffffffff	# 32-bit low bits, but bits 6:2 = 11111 (80+ bit encoding).
	.word	0x0000003f	# 48-bit prefix.
	.word	0x0000007f	# 64-bit prefix.
