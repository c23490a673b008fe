//go:build amd64 && !purego

package matching

import "golang.org/x/sys/cpu"

// laneKernels are the vector kernels this CPU runs, fastest first.
// AVX-512 needs its foundation, its doubleword/quadword conversions and
// its population count (Ice Lake and later, Zen 4 and later); AVX2 runs
// on Haswell and later and every Zen. x/sys/cpu reports a feature only
// when the OS saves its registers too.
var laneKernels = func() (kernels []laneKernel) {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VPOPCNTDQ {
		kernels = append(kernels, avx512Kernel)
	}
	if cpu.X86.HasAVX2 {
		kernels = append(kernels, avx2Kernel)
	}
	return kernels
}()

// scoreLaneBlocks sets out[8b+l] to the score of viewer against lane l of
// blocks[b], for b < count, from the inline words only (scoreRecords),
// with kernel, one of laneKernels.
func scoreLaneBlocks(kernel laneKernel, viewer *laneViewer, blocks *scoreLanes, count int, out *float32) {
	switch kernel {
	case avx512Kernel:
		scoreLaneBlocksAVX512(viewer, blocks, count, out)
	case avx2Kernel:
		scoreLaneBlocksAVX2(viewer, blocks, count, out)
	default:
		panic("matching: no lane kernel " + kernel.String())
	}
}

//go:noescape
func scoreLaneBlocksAVX512(viewer *laneViewer, blocks *scoreLanes, count int, out *float32)

//go:noescape
func scoreLaneBlocksAVX2(viewer *laneViewer, blocks *scoreLanes, count int, out *float32)
