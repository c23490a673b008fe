package e2e

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/workflows"
)

// TestAIInsightsKeepTheKeyAndProfilesOutOfHistoryAndLogs runs the real
// worker against a local OpenAI-compatible server and then searches the
// worker's log, the workflow's history and the database for the API key, and
// the history for profile and insight text.
func TestAIInsightsKeepTheKeyAndProfilesOutOfHistoryAndLogs(t *testing.T) {
	t.Parallel()
	const apiKey = "sk-e2e-SECRET-7d1e55c0ffee"
	fake := fakeopenai.New(t, nil)
	e := newEnv(t, map[string]string{"OPENAI_API_KEY": apiKey, "OPENAI_BASE_URL": fake.URL()})
	pool := openPool(t, e.dbURL)
	members := demodata.Generate(51, 30)
	eventID := loadEvent(t, pool, "ai-event", members)
	w := e.startWorker()

	out, errOut, code := e.starter("enable", "ai-event", "--wait", "--timeout", "2m")
	if code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	checkInvariants(t, pool, eventID, topN)
	if n := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID); n != 30*topN {
		t.Errorf("%d AI insights, want %d", n, 30*topN)
	}
	if fake.Calls() == 0 {
		t.Fatal("the worker never called the model")
	}
	var sampleInsight string
	if err := pool.QueryRow(context.Background(),
		`SELECT insight FROM matches WHERE event_id = $1 ORDER BY user_id, rank LIMIT 1`, eventID).Scan(&sampleInsight); err != nil {
		t.Fatal(err)
	}

	if strings.Contains(w.logs.String(), apiKey) {
		t.Errorf("the API key is in the worker's log")
	}
	if !strings.Contains(w.logs.String(), "AI (") {
		t.Errorf("the worker does not say it writes AI insights:\n%s", w.logs.String())
	}
	if strings.Contains(out+errOut, apiKey) {
		t.Errorf("the API key is in the starter's output")
	}

	history := workflowHistoryJSON(t, workflows.WorkflowID(eventID))
	if !strings.Contains(history, `"Claimed":`) {
		t.Fatalf("activity results are not readable in the decoded history; the search below would prove nothing")
	}
	if strings.Contains(history, apiKey) {
		t.Errorf("the API key is in the workflow history")
	}
	for _, text := range []string{sampleInsight, members[0].Bio, members[1].Bio} {
		if strings.Contains(history, text) {
			t.Errorf("profile or insight text is in the workflow history: %q", text)
		}
	}

	var leaked int
	if err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM matches WHERE insight LIKE '%' || $1 || '%' OR reasons::text LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM matchmaking_insight_cache WHERE for_first LIKE '%' || $1 || '%' OR for_second LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM matchmaking_batches WHERE coalesce(last_error, '') LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM matchmaking_queue WHERE coalesce(last_error, '') LIKE '%' || $1 || '%')`, apiKey).Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked > 0 {
		t.Errorf("the API key is in %d database rows", leaked)
	}
}

var payloadData = regexp.MustCompile(`"data":"([A-Za-z0-9+/=]+)"`)

// workflowHistoryJSON returns the whole history as text, payloads decoded.
func workflowHistoryJSON(t *testing.T, workflowID string) string {
	t.Helper()
	iter := suite.temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var b strings.Builder
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatalf("read history: %v", err)
		}
		raw, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
		b.WriteByte('\n')
		// Payload bytes appear base64-encoded in protojson; decode them so
		// the search sees what the payloads really carry.
		for _, m := range payloadData.FindAllSubmatch(raw, -1) {
			if decoded, err := base64.StdEncoding.DecodeString(string(m[1])); err == nil {
				b.Write(decoded)
				b.WriteByte('\n')
			}
		}
	}
	if b.Len() == 0 {
		t.Fatal("empty workflow history")
	}
	return b.String()
}
