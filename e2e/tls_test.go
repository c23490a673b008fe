package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/workflows"
)

// emptyTemporalFile is a Temporal client config file with no profile, so a
// developer's own ~/.config/temporalio/temporal.toml cannot change what
// these tests connect with.
func emptyTemporalFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// matchThrough loads an event, starts the real worker and enables the
// event with the real starter, all through the env's Temporal settings,
// and checks that every member is matched.
func matchThrough(t *testing.T, e *env, code string) (*workerProcess, string) {
	t.Helper()
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, code, demodata.Generate(71, 60))
	w := e.startWorker()
	out, errOut, exit := e.starter("enable", code, "--wait", "--timeout", "2m")
	if exit != 0 || !strings.Contains(out, "60 of 60 members have matches") {
		t.Fatalf("starter enable --wait exited %d:\n%s%s", exit, out, errOut)
	}
	checkInvariants(t, pool, eventID, topN)
	if out := e.mustStarter("status", code); !strings.Contains(out, code) {
		t.Errorf("starter status through the front:\n%s", out)
	}
	return w, eventID
}

// workerExit runs the worker with extra settings and waits at most a
// minute for it to give up; it returns the exit code and what it wrote.
func workerExit(t *testing.T, e *env, extra ...string) (code int, output string, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.workerBin)
	cmd.Env = append(e.workerEnviron(), extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the worker was still running after a minute:\n%s", out.String())
	}
	if exitErr, ok := err.(*exec.ExitError); ok {
		return exitErr.ExitCode(), out.String(), took
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), took
}

// workerLine is the worker's one-line reason for stopping ("worker: ...").
func workerLine(t *testing.T, output string) string {
	t.Helper()
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, "worker: ") {
			return line
		}
	}
	t.Fatalf("the worker wrote no \"worker: \" line:\n%s", output)
	return ""
}

// TestMTLSFront matches an event through a front that requires a client
// certificate the test CA signed, and checks that a worker without one, or
// with one of another CA, stops within a minute with a line saying how it
// connected.
func TestMTLSFront(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	f := startMTLSFront(t)
	e := newEnv(t, map[string]string{
		"TEMPORAL_ADDRESS":                 f.addr,
		"TEMPORAL_CONFIG_FILE":             emptyTemporalFile(t),
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": f.pki.CAFile,
	})
	e.workerVars["TEMPORAL_TLS_CLIENT_CERT_PATH"] = f.pki.ClientCertFile
	e.workerVars["TEMPORAL_TLS_CLIENT_KEY_PATH"] = f.pki.ClientKeyFile
	// The starter connects with a certificate too.
	e.vars["TEMPORAL_TLS_CLIENT_CERT_PATH"] = f.pki.ClientCertFile
	e.vars["TEMPORAL_TLS_CLIENT_KEY_PATH"] = f.pki.ClientKeyFile

	w, _ := matchThrough(t, e, "mtls")
	if f.accepted.Load() == 0 {
		t.Fatal("nothing went through the front")
	}
	if !strings.Contains(w.logs.String(), "client certificate "+f.pki.ClientCertFile) {
		t.Errorf("the worker did not log its client certificate:\n%s", w.logs.String())
	}

	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"no client certificate", []string{"TEMPORAL_TLS_CLIENT_CERT_PATH=", "TEMPORAL_TLS_CLIENT_KEY_PATH="}},
		{"certificate of another CA", []string{"TEMPORAL_TLS_CLIENT_CERT_PATH=" + f.pki.OtherClientCertFile,
			"TEMPORAL_TLS_CLIENT_KEY_PATH=" + f.pki.OtherClientKeyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedBefore := f.refused.Load()
			code, out, took := workerExit(t, e, tc.extra...)
			line := workerLine(t, out)
			if code == 0 || !strings.HasPrefix(line, "worker: Temporal unreachable at "+f.addr+" (namespace default; TLS (") {
				t.Fatalf("exit %d after %s, line %q; want a non-zero exit and the unreachable Temporal named", code, took, line)
			}
			// The front counts a refusal once its side of the handshake
			// returns, which can be just after the worker read the alert
			// and exited.
			deadline := time.Now().Add(5 * time.Second)
			for f.refused.Load() == refusedBefore && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if f.refused.Load() == refusedBefore {
				t.Errorf("the front refused no handshake")
			}
			t.Logf("exit %d after %s: %s", code, took.Round(time.Millisecond), line)
		})
	}

	// A bad setting is one line before anything is dialled.
	before := f.accepted.Load() + f.refused.Load()
	code, out, _ := workerExit(t, e, "TEMPORAL_TLS_CLIENT_CERT_PATH=")
	if line := workerLine(t, out); code == 0 || line != "worker: Temporal connection settings: TEMPORAL_TLS_CLIENT_KEY_PATH is set but TEMPORAL_TLS_CLIENT_CERT_PATH is not: a private key needs its client certificate" {
		t.Errorf("key without certificate: exit %d, line %q", code, line)
	}
	if f.accepted.Load()+f.refused.Load() != before {
		t.Errorf("the worker dialled with a bad setting")
	}
}

// newNamespace registers a namespace of its own on the dev server with the
// given search attributes, as an administrator would, and waits until the
// frontend serves both.
func newNamespace(t *testing.T, attrs ...temporal.SearchAttributeKey) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "mm-tls-" + hex.EncodeToString(b)
	if _, err := suite.temporal.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	}); err != nil {
		t.Fatalf("register namespace %s: %v", ns, err)
	}
	count := func(query string) error {
		_, err := suite.temporal.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns, Query: query})
		return err
	}
	waitFor(t, 30*time.Second, "the namespace "+ns, func() bool { return count("") == nil })
	if len(attrs) > 0 {
		req := &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: map[string]enums.IndexedValueType{}}
		for _, a := range attrs {
			req.SearchAttributes[a.GetName()] = a.GetValueType()
		}
		if _, err := suite.temporal.OperatorService().AddSearchAttributes(ctx, req); err != nil {
			t.Fatalf("add search attributes to %s: %v", ns, err)
		}
		for _, a := range attrs {
			waitFor(t, 30*time.Second, a.GetName()+" in "+ns, func() bool { return count(a.GetName()+" IS NOT NULL") == nil })
		}
	}
	return ns
}

const testAPIKey = "mmtest-api-key-5d41402abc4b2a76b9719d911017c592"

// newAPIKeyFrontEnv is an env whose binaries reach the dev server in
// namespace ns through an API-key front of their own (TLS, the key in
// testAPIKey), with no Temporal config file to fall back on.
func newAPIKeyFrontEnv(t *testing.T, ns string) (*env, *front) {
	t.Helper()
	f := startAPIKeyFront(t, testAPIKey)
	return newEnv(t, map[string]string{
		"TEMPORAL_ADDRESS":                 f.addr,
		"TEMPORAL_NAMESPACE":               ns,
		"TEMPORAL_CONFIG_FILE":             emptyTemporalFile(t),
		"TEMPORAL_API_KEY":                 testAPIKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": f.pki.CAFile,
		"TEMPORAL_TLS_SERVER_NAME":         "temporal.test",
	}), f
}

// TestAPIKeyFront matches an event through a front that wants an API key
// and refuses the OperatorService, in a namespace whose search attributes
// an administrator created; the key shows in no log, output or history.
func TestAPIKeyFront(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	ns := newNamespace(t, workflows.SearchAttributes...)
	e, f := newAPIKeyFrontEnv(t, ns)
	w, eventID := matchThrough(t, e, "apikey")
	if f.operatorRefused.Load() == 0 {
		t.Errorf("the worker never tried the OperatorService; the test does not test the refusal")
	}
	if f.accepted.Load() == 0 {
		t.Fatal("nothing went through the front")
	}
	if strings.Contains(w.logs.String(), testAPIKey) {
		t.Errorf("the worker logged the API key")
	}
	if out, errOut, code := e.starter("status", "apikey", "-o", "json"); code != 0 || strings.Contains(out+errOut, testAPIKey) {
		t.Errorf("starter status exited %d, or printed the API key:\n%s%s", code, out, errOut)
	}
	nsClient, err := client.NewClientFromExistingWithContext(context.Background(), suite.temporal, client.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer nsClient.Close()
	iter := nsClient.GetWorkflowHistory(context.Background(), workflows.WorkflowID(eventID), "", false, 0)
	events := 0
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		events++
		if b, _ := protojson.Marshal(ev); bytes.Contains(b, []byte(testAPIKey)) {
			t.Fatalf("history event %d carries the API key", ev.GetEventId())
		}
	}
	if events == 0 {
		t.Errorf("the workflow has no history in %s", ns)
	}

	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"no API key", []string{"TEMPORAL_API_KEY=", "TEMPORAL_TLS=true"}},
		{"wrong API key", []string{"TEMPORAL_API_KEY=mmtest-wrong-key-0000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, took := workerExit(t, e, tc.extra...)
			line := workerLine(t, out)
			if code == 0 || !strings.HasPrefix(line, "worker: Temporal at "+f.addr+" refused this client's credentials (namespace "+ns+"; TLS (") {
				t.Fatalf("exit %d after %s, line %q; want a non-zero exit and the refusal", code, took, line)
			}
			if strings.Contains(out, "mmtest-") {
				t.Errorf("the worker's output shows the API key:\n%s", out)
			}
			t.Logf("exit %d after %s: %s", code, took.Round(time.Millisecond), line)
		})
	}
}

// TestAPIKeyFrontMissingSearchAttributes: where the OperatorService is
// refused and the namespace lacks some search attributes, the worker stops
// with one line naming each missing one and the commands that create them.
func TestAPIKeyFrontMissingSearchAttributes(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	ns := newNamespace(t, workflows.AttrEventCode, workflows.AttrPaused)
	e, f := newAPIKeyFrontEnv(t, ns)
	code, out, took := workerExit(t, e)
	line := workerLine(t, out)
	for _, want := range []string{
		"worker: search attributes: namespace " + ns + " lacks the search attributes MatchmakingUsersMatched (Int), MatchmakingQueueDepth (Int),",
		fmt.Sprintf("`tcld namespace search-attributes add --namespace %s --search-attribute MatchmakingUsersMatched=Int --search-attribute MatchmakingQueueDepth=Int`", ns),
		fmt.Sprintf("`temporal operator search-attribute create --namespace %s --name MatchmakingUsersMatched --name MatchmakingQueueDepth --type Int`", ns),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if code == 0 || strings.Contains(line, "MatchmakingEventCode") || strings.Contains(out, testAPIKey) {
		t.Errorf("exit %d after %s; the line names an attribute that exists, or the output shows the key:\n%s", code, took, out)
	}
	if f.operatorRefused.Load() == 0 {
		t.Errorf("the front refused no OperatorService call")
	}
	t.Logf("exit %d after %s: %s", code, took.Round(time.Millisecond), line)

	// The starter stops the same way, before it changes anything; status
	// shows what the database knows and says why Temporal could not help.
	e.starterFails(exitFailure, "tcld namespace search-attributes add --namespace "+ns, "pause", "--all")
	var status statusJSON
	out, errOut, code := e.starter("status", "-o", "json")
	if err := json.Unmarshal([]byte(out), &status); code != 0 || err != nil || status.Temporal.Reachable ||
		!strings.Contains(status.Temporal.Error, "tcld namespace search-attributes add --namespace "+ns) {
		t.Errorf("status: exit %d, %+v (%v), stderr %q", code, status, err, errOut)
	}
}
