//go:build !amd64 || purego

package matching

// laneKernel is false: ScoreRun scores with Score alone.
var laneKernel = false

func scoreLaneBlocks(*laneViewer, *scoreLanes, int, *float32) {
	panic("matching: no lane kernel on this platform")
}
