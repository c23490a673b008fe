package main

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/eventmatch/matchmaker/workflows"
)

// answers is a Temporal client whose status query gives, in turn, the
// errors listed, then answer (a status in the idle phase when nil). Every
// other method is the nil embedded client's, so a call to one panics.
type answers struct {
	client.Client
	errs   []error
	answer any
	calls  int
}

func (a *answers) QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...any) (converter.EncodedValue, error) {
	a.calls++
	if a.calls <= len(a.errs) {
		return nil, a.errs[a.calls-1]
	}
	answer := a.answer
	if answer == nil {
		answer = workflows.Status{Phase: workflows.PhaseIdle}
	}
	payloads, err := converter.GetDefaultDataConverter().ToPayloads(answer)
	if err != nil {
		return nil, err
	}
	return client.NewValue(payloads), nil
}

// TestStatusQueryAsksAgain: a query that timed out or failed in transit is
// asked again, once; a missing workflow or a refusing handler is an answer.
func TestStatusQueryAsksAgain(t *testing.T) {
	t.Parallel()
	lost := serviceerror.NewDeadlineExceeded("context deadline exceeded")
	cases := []struct {
		name      string
		errs      []error
		answer    any
		wantCalls int
		wantErr   func(error) bool // nil: the status is answered
	}{
		{"answered at once", nil, nil, 1, nil},
		{"an answer lost, then answered", []error{lost}, nil, 2, nil},
		{"unavailable, then answered", []error{serviceerror.NewUnavailable("connection reset")}, nil, 2, nil},
		{"no worker twice", []error{lost, lost}, nil, 2, is[*serviceerror.DeadlineExceeded]},
		{"no such workflow", []error{serviceerror.NewNotFound("workflow not found")}, nil, 1, is[*serviceerror.NotFound]},
		{"handler refused", []error{serviceerror.NewQueryFailed("unknown query")}, nil, 1, is[*serviceerror.QueryFailed]},
		{"an answer that does not decode", nil, "not a status", 1, func(err error) bool { return err != nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &answers{errs: tc.errs, answer: tc.answer}
			var st workflows.Status
			err := queryStatus(context.Background(), c, "matchmaking-x", &st)
			if c.calls != tc.wantCalls {
				t.Errorf("%d queries, want %d", c.calls, tc.wantCalls)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("err = %v, want the status", err)
			case tc.wantErr == nil && st.Phase != workflows.PhaseIdle:
				t.Errorf("status = %+v, want the idle phase", st)
			case tc.wantErr != nil && !tc.wantErr(err):
				t.Errorf("err = %v (%T), want the last attempt's error", err, err)
			}
		})
	}
}

// is reports whether err is, or wraps, an error of type T.
func is[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}
