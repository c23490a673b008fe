//go:build !amd64 || purego

package matching

// laneKernels is empty: ScoreRun scores with Score alone.
var laneKernels []laneKernel

func scoreLaneBlocks(kernel laneKernel, _ *laneViewer, _ *scoreLanes, _ int, _ *float32) {
	panic("matching: no lane kernel " + kernel.String() + " on this platform")
}
