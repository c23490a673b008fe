//go:build amd64 && !purego

#include "textflag.h"

#include "lanes_amd64.h"

// One word of the bio signature: the popcount of viewer AND candidates,
// added to acc.
#define BIO_WORD(k, vreg, acc) \
	VPANDQ (64*k)(BX), vreg, Z5; \
	VPOPCNTQ Z5, Z5; \
	VPADDQ Z5, acc, acc

// One direction of complementarity, in place of shared (its count of
// needs met): 2·shared times the reciprocal of the candidates' count at
// candCount plus the viewer's at viewerCount, gathered into recip with
// mask kreg.
#define COVERAGE(candCount, viewerCount, kreg, recip, shared) \
	VPMOVZXBQ candCount(BX), Z6; \
	VPADDQ.BCST viewerCount(AX), Z6, Z6; \
	KXNORB kreg, kreg, kreg; \
	VGATHERQPD (R8)(Z6*8), kreg, recip; \
	VPADDQ shared, shared, shared; \
	VCVTQQ2PD shared, shared; \
	VMULPD recip, shared, shared

// func scoreLaneBlocksAVX512(viewer *laneViewer, blocks *scoreLanes, count int, out *float32)
//
// Per block, in 64-bit lanes, what scoreRecords computes per pair:
//   interests     = shared interests · 1/(|A|+|B|−shared)
//   complementary = (2·shared needs · 1/(|looking_for|+|offering|), both ways, added) · ½
//   bio           = shared bio bits · (A's 1/norm · B's 1/norm)
//   total         = ((w₁·interests + w₂·complementary) + w₃·bio) + w₄·[same industry]
// then min(total, 1) rounded to float32, eight scores stored per block.
TEXT ·scoreLaneBlocksAVX512(SB), NOSPLIT, $0-32
	MOVQ viewer+0(FP), AX
	MOVQ blocks+8(FP), BX
	MOVQ count+16(FP), CX
	MOVQ out+24(FP), DX
	TESTQ CX, CX
	JZ done
	MOVQ V_RECIPROCALS(AX), R8

	// The viewer's words, each broadcast to all eight lanes.
	VPBROADCASTQ 0(AX), Z16
	VPBROADCASTQ 8(AX), Z17
	VPBROADCASTQ 16(AX), Z18
	VPBROADCASTQ 24(AX), Z19
	VPBROADCASTQ 32(AX), Z20
	VPBROADCASTQ 40(AX), Z21
	VPBROADCASTQ 48(AX), Z22
	VPBROADCASTQ 56(AX), Z23
	VPBROADCASTQ 64(AX), Z24
	VPBROADCASTQ 72(AX), Z25
	VPBROADCASTQ 80(AX), Z26
	VPBROADCASTQ 88(AX), Z27
	VPBROADCASTQ 96(AX), Z28
	VPBROADCASTQ 104(AX), Z29
	VBROADCASTSD V_INVNORM(AX), Z30
	VPBROADCASTQ V_INDUSTRY(AX), Z31

block:
	// Shared bio bits, in two accumulators to halve the dependency chain.
	VPANDQ 0(BX), Z16, Z0
	VPOPCNTQ Z0, Z0
	VPANDQ 64(BX), Z17, Z1
	VPOPCNTQ Z1, Z1
	BIO_WORD(2, Z18, Z0)
	BIO_WORD(3, Z19, Z1)
	BIO_WORD(4, Z20, Z0)
	BIO_WORD(5, Z21, Z1)
	BIO_WORD(6, Z22, Z0)
	BIO_WORD(7, Z23, Z1)
	VPADDQ Z1, Z0, Z0

	// Shared interests (Z2), the candidates' needs the viewer offers (Z3),
	// the viewer's needs the candidates offer (Z4).
	VPANDQ 512(BX), Z24, Z2
	VPOPCNTQ Z2, Z2
	VPANDQ 576(BX), Z25, Z5
	VPOPCNTQ Z5, Z5
	VPADDQ Z5, Z2, Z2
	VPANDQ 640(BX), Z26, Z3
	VPOPCNTQ Z3, Z3
	VPANDQ 704(BX), Z27, Z5
	VPOPCNTQ Z5, Z5
	VPADDQ Z5, Z3, Z3
	VPANDQ 768(BX), Z28, Z4
	VPOPCNTQ Z4, Z4
	VPANDQ 832(BX), Z29, Z5
	VPOPCNTQ Z5, Z5
	VPADDQ Z5, Z4, Z4

	// Interests: shared · reciprocals[|A| + |B| − shared].
	VPMOVZXBQ L_INTERESTS(BX), Z6
	VPADDQ.BCST V_INTERESTS(AX), Z6, Z6
	VPSUBQ Z2, Z6, Z6
	KXNORB K1, K1, K1
	VGATHERQPD (R8)(Z6*8), K1, Z7
	VCVTQQ2PD Z2, Z2
	VMULPD Z7, Z2, Z2

	// The candidates' needs: 2·shared · reciprocals[their |looking_for| + the viewer's |offering|];
	// the viewer's needs: 2·shared · reciprocals[its |looking_for| + their |offering|].
	COVERAGE(L_LOOKINGFOR, V_OFFERING, K2, Z8, Z3)
	COVERAGE(L_OFFERING, V_LOOKINGFOR, K3, Z9, Z4)

	// Complementary: the two directions' mean.
	VADDPD Z4, Z3, Z3
	VMULPD.BCST V_HALF(AX), Z3, Z3

	// Bio: shared bits · (the viewer's 1/norm · the candidates').
	VMULPD L_INVNORM(BX), Z30, Z10
	VCVTQQ2PD Z0, Z0
	VMULPD Z10, Z0, Z0

	// Industry: w₄ where the candidates' industry is the viewer's, else 0
	// (the viewer's is −1 when it has none, which no candidate has).
	VPMOVSXDQ L_INDUSTRY(BX), Z11
	VPCMPEQQ Z31, Z11, K4
	VPXORQ Z12, Z12, Z12
	VBROADCASTSD V_W_INDUSTRY(AX), K4, Z12

	// The weighted sum, in weighScore's order, capped at 1.
	VMULPD.BCST V_W_INTERESTS(AX), Z2, Z2
	VMULPD.BCST V_W_COMPLEMENTARY(AX), Z3, Z3
	VADDPD Z3, Z2, Z2
	VMULPD.BCST V_W_BIO(AX), Z0, Z0
	VADDPD Z0, Z2, Z2
	VADDPD Z12, Z2, Z2
	VMINPD.BCST V_ONE(AX), Z2, Z2
	VCVTPD2PS Z2, Y2
	VMOVUPS Y2, (DX)

	ADDQ $L_SIZE, BX
	ADDQ $32, DX
	DECQ CX
	JNZ block
	VZEROUPPER

done:
	RET
