//go:build amd64 && !purego

package matching

import "golang.org/x/sys/cpu"

// laneKernel is whether scoreLaneBlocks runs here: it needs AVX-512's
// foundation, its doubleword/quadword conversions and its population count
// (Ice Lake and later, Zen 4 and later), with the OS saving the registers.
var laneKernel = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VPOPCNTDQ

// scoreLaneBlocks sets out[8b+l] to the score of viewer against lane l of
// blocks[b], for b < count, from the inline words only (scoreRecords).
//
//go:noescape
func scoreLaneBlocks(viewer *laneViewer, blocks *scoreLanes, count int, out *float32)
