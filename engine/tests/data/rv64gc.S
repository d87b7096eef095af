# Every instruction form of RV64GC, for the decoder's golden test (see regen-golden.sh).
#
# Assembled with -march=rv64gc; each instruction's disassembly by objdump becomes one line of
# decode.golden. The 32-bit section is assembled with compression off so that the assembler
# keeps the written form; the compressed section spells out each c. instruction.

	.text
	.option norvc

# RV64I: upper immediates and control transfer, with extreme immediates.
	lui	x1, 0
	lui	x31, 0xfffff
	lui	a0, 0x80000
	lui	a0, 0x7ffff
	auipc	x0, 0
	auipc	t0, 0xfffff
	auipc	a0, 0x12345
	jal	x0, .
	jal	x1, .+8
	jal	ra, .-4
	jal	x31, .+0xffffe
	jal	x5, .-0x100000
	jalr	x0, 0(x1)
	jalr	x1, -2048(x31)
	jalr	x5, 2047(x6)
	jalr	x0, -1(x0)
1:	beq	x0, x0, 1b
	bne	a0, a1, .+4094
	blt	t0, t1, .-4096
	bge	s0, s1, .+8
	bltu	x31, x30, .-2
	bgeu	a5, zero, .+2

# Loads and stores.
	lb	a0, -2048(a1)
	lh	x0, 2047(x31)
	lw	t0, 0(sp)
	ld	s1, -8(s0)
	lbu	a2, 1(a3)
	lhu	a4, -1(a5)
	lwu	t6, 1234(t5)
	sb	a0, -2048(a1)
	sh	x0, 2047(x31)
	sw	t0, 0(sp)
	sd	s1, -8(s0)

# Register-immediate arithmetic and shifts (6-bit shamt).
	addi	x0, x0, 0
	addi	a0, a1, -2048
	addi	a0, a1, 2047
	slti	t0, t1, -1
	sltiu	t0, t1, 1
	xori	a0, a0, -1
	ori	a0, a0, 0x7ff
	andi	a0, a0, -2048
	slli	a0, a1, 0
	slli	a0, a1, 63
	srli	a0, a1, 32
	srli	x31, x31, 1
	srai	a0, a1, 63
	srai	a0, a1, 0

# Register-register arithmetic.
	add	x1, x2, x3
	sub	x31, x30, x29
	sll	a0, a1, a2
	slt	a0, a1, a2
	sltu	a0, x0, a2
	xor	a0, a1, a2
	srl	a0, a1, a2
	sra	a0, a1, a2
	or	a0, a1, a2
	and	a0, a1, a2

# RV64I word operations.
	addiw	a0, a1, -2048
	addiw	a0, a1, 0
	addiw	a0, a1, 2047
	slliw	a0, a1, 0
	slliw	a0, a1, 31
	srliw	a0, a1, 31
	sraiw	a0, a1, 31
	sraiw	a0, a1, 1
	addw	a0, a1, a2
	subw	a0, a1, a2
	sllw	a0, a1, a2
	srlw	a0, a1, a2
	sraw	a0, a1, a2

# Fences and system instructions.
	fence
	fence	rw, rw
	fence	r, w
	fence	i, o
	fence	io, ir
	fence	ow, iorw
	fence.tso
	.insn	i 0x0f, 0, x0, x0, 0x010
	.insn	i 0x0f, 0, x0, x0, 0x080
	.insn	i 0x0f, 0, x0, x0, 0
	fence.i
	ecall
	ebreak

# Zicsr: every form, named and unnamed CSRs, every uimm extreme.
	csrrw	a0, fflags, a1
	csrrw	x0, frm, x31
	csrrs	a0, fcsr, x0
	csrrs	t0, cycle, x0
	csrrs	t0, time, x0
	csrrs	t0, instret, x0
	csrrc	a0, 0x7c0, a2
	csrrc	a0, 0xfff, a2
	csrrwi	a0, fflags, 0
	csrrwi	x0, frm, 31
	csrrsi	a0, 0x123, 5
	csrrci	a0, fcsr, 17
	csrrw	a0, 0x800, a1
	csrrs	a0, 0xc03, x0
	csrrs	a0, 0xc9f, x0
	csrrs	a0, 0x3a0, x0
	csrrs	a0, 0x3bf, x0
	csrrs	a0, 0x33f, x0
	csrrs	a0, 0x723, x0
	csrrs	a0, 0xb03, x0
	csrrs	a0, 0xb9f, x0
	csrrs	a0, 0x300, x0
	csrrs	a0, 0xf14, x0

# M.
	mul	a0, a1, a2
	mulh	a0, a1, a2
	mulhsu	a0, a1, a2
	mulhu	a0, a1, a2
	div	a0, a1, a2
	divu	a0, a1, a2
	rem	a0, a1, a2
	remu	x31, x30, x29
	mulw	a0, a1, a2
	divw	a0, a1, a2
	divuw	a0, a1, a2
	remw	a0, a1, a2
	remuw	a0, a1, a2

# A: every op in both widths with every aq/rl combination.
	.irp	w, w, d
	.irp	o, , .aq, .rl, .aqrl
	lr.\w\o		a0, (a1)
	sc.\w\o		a0, a2, (a1)
	amoswap.\w\o	a0, a2, (a1)
	amoadd.\w\o	a0, a2, (a1)
	amoxor.\w\o	a0, a2, (a1)
	amoand.\w\o	a0, a2, (a1)
	amoor.\w\o	a0, a2, (a1)
	amomin.\w\o	a0, a2, (a1)
	amomax.\w\o	a0, a2, (a1)
	amominu.\w\o	a0, a2, (a1)
	amomaxu.\w\o	t6, x0, (x31)
	.endr
	.endr

# F and D loads and stores.
	flw	f0, -2048(a0)
	flw	f31, 2047(x31)
	fld	fa0, 8(sp)
	fsw	f0, -2048(a0)
	fsw	f31, 2047(x31)
	fsd	fa0, -8(sp)

# F and D arithmetic with every rounding mode, written and dynamic.
	.irp	p, s, d
	.irp	r, rne, rtz, rdn, rup, rmm, dyn
	fmadd.\p	f1, f2, f3, f4, \r
	fmsub.\p	f5, f6, f7, f8, \r
	fnmsub.\p	f9, f10, f11, f12, \r
	fnmadd.\p	f31, f30, f29, f28, \r
	fadd.\p		fa0, fa1, fa2, \r
	fsub.\p		fa0, fa1, fa2, \r
	fmul.\p		fa0, fa1, fa2, \r
	fdiv.\p		fa0, fa1, fa2, \r
	fsqrt.\p	fa0, fa1, \r
	fcvt.w.\p	a0, fa0, \r
	fcvt.wu.\p	a0, fa0, \r
	fcvt.l.\p	a0, fa0, \r
	fcvt.lu.\p	a0, fa0, \r
	fcvt.\p\().l	fa0, a0, \r
	fcvt.\p\().lu	fa0, a0, \r
	.endr
	fsgnj.\p	fa0, fa1, fa2
	fsgnjn.\p	fa0, fa1, fa2
	fsgnjx.\p	f31, f0, f31
	fmin.\p		fa0, fa1, fa2
	fmax.\p		fa0, fa1, fa2
	feq.\p		a0, fa1, fa2
	flt.\p		a0, fa1, fa2
	fle.\p		x31, f0, f31
	fclass.\p	a0, fa0
	.endr
	.irp	r, rne, rtz, rdn, rup, rmm, dyn
	fcvt.s.w	fa0, a0, \r
	fcvt.s.wu	fa0, a0, \r
	fcvt.s.d	fa0, fa1, \r
	.endr
	fcvt.d.w	fa0, a0
	fcvt.d.wu	f31, x31
	fcvt.d.s	fa0, fa1
	fmv.x.w		a0, fa0
	fmv.w.x		fa0, a0
	fmv.x.d		x31, f31
	fmv.d.x		f0, x0

# The reserved rounding modes still decode; objdump prints them as `unknown`.
	.insn	r 0x53, 5, 0x00, fa0, fa1, fa2
	.insn	r 0x53, 6, 0x01, fa0, fa1, fa2
	.insn	r4 0x43, 5, 0, fa0, fa1, fa2, fa3
	.insn	r 0x53, 6, 0x60, a0, fa0, x0

# RVC, quadrant 0.
	.option rvc
	c.addi4spn	x8, sp, 4
	c.addi4spn	x15, sp, 1020
	c.addi4spn	a0, x2, 16
	c.fld	f8, 0(x8)
	c.fld	fa5, 248(a5)
	c.lw	x8, 0(x8)
	c.lw	a0, 124(a1)
	c.lw	a0, 64(a1)
	c.lw	a0, 4(a1)
	c.ld	x8, 0(x15)
	c.ld	a0, 248(a1)
	c.fsd	f8, 0(x8)
	c.fsd	fa5, 248(a5)
	c.sw	x8, 0(x8)
	c.sw	a0, 124(a1)
	c.sd	x15, 8(x8)
	c.sd	a0, 248(a1)

# RVC, quadrant 1.
	c.addi	x0, 0
	c.addi	x0, 3
	c.addi	a0, -32
	c.addi	x31, 31
	c.addi	a0, 0
	c.addiw	a0, 0
	c.addiw	x31, -32
	c.addiw	x1, 31
	c.li	a0, -32
	c.li	x0, 5
	c.li	x31, 31
	c.addi16sp	sp, -512
	c.addi16sp	sp, 496
	c.addi16sp	sp, 16
	c.addi16sp	sp, -16
	c.lui	a0, 1
	c.lui	a0, 0x1f
	c.lui	a0, 0xfffff
	c.lui	a0, 0xfffe0
	c.lui	x0, 1
	c.lui	x31, 0xfffe0
	c.srli	x8, 1
	c.srli	a5, 31
	c.srli	a0, 32
	c.srli	a0, 63
	c.srai	x8, 1
	c.srai	a5, 63
	.insn	2, 0x8101
	.insn	2, 0x8501
	c.andi	a0, 0
	c.andi	a0, -1
	c.andi	a0, -32
	c.andi	x15, 31
	c.sub	x8, x15
	c.xor	a0, a1
	c.or	a0, a1
	c.and	a0, a1
	c.subw	x15, x8
	c.addw	a0, a1
	c.j	.
	c.j	.+2046
	c.j	.-2048
	c.j	.+0x2a
	c.j	.-0x556
	c.beqz	x8, .
	c.beqz	a5, .+254
	c.beqz	a0, .-256
	c.bnez	a0, .+0x56
	c.bnez	a0, .-0xaa

# RVC, quadrant 2.
	c.slli	a0, 1
	c.slli	x31, 63
	c.slli	x0, 3
	.insn	2, 0x0002
	.insn	2, 0x0502
	c.fldsp	f0, 0(sp)
	c.fldsp	f31, 504(sp)
	c.fldsp	fa0, 64(sp)
	c.lwsp	x1, 0(sp)
	c.lwsp	a0, 252(sp)
	c.lwsp	a0, 128(sp)
	c.ldsp	x31, 504(sp)
	c.ldsp	ra, 8(sp)
	c.jr	ra
	c.jr	x31
	c.mv	a0, a1
	c.mv	x0, x31
	c.ebreak
	c.jalr	a0
	c.jalr	x1
	c.add	a0, a1
	c.add	x0, x31
	c.fsdsp	f0, 0(sp)
	c.fsdsp	f31, 504(sp)
	c.swsp	x0, 252(sp)
	c.swsp	a0, 128(sp)
	c.sdsp	ra, 504(sp)
	c.sdsp	x31, 64(sp)
