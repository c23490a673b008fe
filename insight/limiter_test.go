package insight

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

// The slots are checked on a frozen clock, so the test measures the
// limiter's spacing, not the machine's scheduling.
func TestLimiterSpacingUnderConcurrency(t *testing.T) {
	l := newLimiter(1200) // one request every 50ms
	frozen := time.Now()
	l.now = func() time.Time { return frozen }
	const n = 6
	var mu sync.Mutex
	var delays []time.Duration
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			d, err := l.reserve(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			delays = append(delays, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	for i, d := range delays {
		if want := time.Duration(i) * 50 * time.Millisecond; d != want {
			t.Errorf("slot %d is %v away, want %v", i, d, want)
		}
	}
	// Once the clock passes the reserved slots, the next request goes at once.
	frozen = frozen.Add(time.Second)
	if d, err := l.reserve(context.Background()); err != nil || d != 0 {
		t.Errorf("after a quiet second: wait %v, %v; want none", d, err)
	}
}

func TestLimiterRespectsContext(t *testing.T) {
	l := newLimiter(60) // one per second
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The next slot is ~1s away, past this deadline: refused at once.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("wait past deadline: err %v after %v, want DeadlineExceeded at once", err, time.Since(start))
	}
	if Classify(err) != "budget" {
		t.Fatalf("Classify = %q, want budget", Classify(err))
	}

	// Cancellation ends a wait.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	start = time.Now()
	if err := l.wait(ctx2); !errors.Is(err, context.Canceled) || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("canceled wait: err %v after %v", err, time.Since(start))
	}

	// Unlimited.
	var none *limiter = newLimiter(0)
	if none != nil || none.wait(context.Background()) != nil {
		t.Fatal("rpm 0 should be unlimited")
	}
}
