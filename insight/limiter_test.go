package insight

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestLimiterSpacingUnderConcurrency(t *testing.T) {
	l := newLimiter(1200) // one request every 50ms
	const n = 6
	start := time.Now()
	var mu sync.Mutex
	var at []time.Duration
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := l.wait(context.Background()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			at = append(at, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	if at[0] > 30*time.Millisecond {
		t.Errorf("first request waited %v, want immediate", at[0])
	}
	for i := 1; i < n; i++ {
		if gap := at[i] - at[i-1]; gap < 45*time.Millisecond {
			t.Errorf("requests %d and %d only %v apart, want ≥ 50ms", i-1, i, gap)
		}
	}
	if total := at[n-1]; total < time.Duration(n-1)*50*time.Millisecond-5*time.Millisecond {
		t.Errorf("%d requests took %v, want ≥ %v", n, total, time.Duration(n-1)*50*time.Millisecond)
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
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("wait past deadline: err %v after %v, want DeadlineExceeded at once", err, time.Since(start))
	}
	if Classify(err) != "budget" {
		t.Fatalf("Classify = %q, want budget", Classify(err))
	}

	// Cancellation ends a wait.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	start = time.Now()
	if err := l.wait(ctx2); !errors.Is(err, context.Canceled) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("canceled wait: err %v after %v", err, time.Since(start))
	}

	// Unlimited.
	var none *limiter = newLimiter(0)
	if none != nil || none.wait(context.Background()) != nil {
		t.Fatal("rpm 0 should be unlimited")
	}
}
