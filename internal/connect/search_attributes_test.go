package connect

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/eventmatch/matchmaker/workflows"
)

// fakeTemporal answers DescribeNamespace and the two search-attribute calls
// with the given errors; any other call panics.
type fakeTemporal struct {
	client.Client
	describeErr, listErr, addErr error
	// countErr answers CountWorkflowExecutions by the query's first word
	// (the attribute's name); a name not in it exists.
	countErr map[string]error
	// addedByOther: once AddSearchAttributes has been called (and failed
	// with addErr), the list holds every attribute, as when another worker
	// added them first.
	addedByOther bool
	addCalled    atomic.Bool
}

type fakeWorkflowService struct {
	workflowservice.WorkflowServiceClient
	*fakeTemporal
}

type fakeOperatorService struct {
	operatorservice.OperatorServiceClient
	*fakeTemporal
}

func (f *fakeTemporal) WorkflowService() workflowservice.WorkflowServiceClient {
	return fakeWorkflowService{fakeTemporal: f}
}

func (f *fakeTemporal) OperatorService() operatorservice.OperatorServiceClient {
	return fakeOperatorService{fakeTemporal: f}
}

func (f fakeWorkflowService) DescribeNamespace(context.Context, *workflowservice.DescribeNamespaceRequest, ...grpc.CallOption) (*workflowservice.DescribeNamespaceResponse, error) {
	return &workflowservice.DescribeNamespaceResponse{}, f.describeErr
}

func (f fakeWorkflowService) CountWorkflowExecutions(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest, _ ...grpc.CallOption) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	name, _, _ := strings.Cut(req.GetQuery(), " ")
	return &workflowservice.CountWorkflowExecutionsResponse{}, f.countErr[name]
}

func (f fakeOperatorService) ListSearchAttributes(context.Context, *operatorservice.ListSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error) {
	resp := &operatorservice.ListSearchAttributesResponse{}
	if f.addedByOther && f.addCalled.Load() {
		resp.CustomAttributes = map[string]enums.IndexedValueType{}
		for _, key := range workflows.SearchAttributes {
			resp.CustomAttributes[key.GetName()] = key.GetValueType()
		}
	}
	return resp, f.listErr
}

func (f fakeOperatorService) AddSearchAttributes(context.Context, *operatorservice.AddSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.AddSearchAttributesResponse, error) {
	f.addCalled.Store(true)
	return &operatorservice.AddSearchAttributesResponse{}, f.addErr
}

// Two workers starting at once on a fresh namespace: the other one's add
// lands first, ours is refused, and the attributes exist all the same.
func TestSearchAttributesAddedByAnotherWorkerMeanwhile(t *testing.T) {
	t.Parallel()
	fake := &fakeTemporal{addedByOther: true, addErr: serviceerror.NewAlreadyExists("search attribute MatchmakingPaused already exists")}
	if err := EnsureSearchAttributes(t.Context(), fake, "foo", workflows.SearchAttributes); err != nil {
		t.Fatalf("attributes another worker added meanwhile: %v", err)
	}
}

func TestRequireNamespace(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // "" means no error
	}{
		{"exists", nil, ""},
		{"not found", serviceerror.NewNamespaceNotFound("foo"),
			`Temporal namespace "foo" does not exist at localhost:7233; create it (temporal operator namespace create --namespace foo) or set TEMPORAL_NAMESPACE`},
		// Matched by type, not by text.
		{"not found, other text", &serviceerror.NamespaceNotFound{Message: "nope"},
			`Temporal namespace "foo" does not exist at localhost:7233`},
		{"not allowed to describe", serviceerror.NewPermissionDenied("Request unauthorized.", ""), ""},
		{"unavailable", serviceerror.NewUnavailable("connection refused"),
			`describe Temporal namespace "foo" at localhost:7233: connection refused`},
		// Text alone does not make a missing namespace.
		{"text only", errors.New("Namespace foo is not found."),
			`describe Temporal namespace "foo" at localhost:7233: Namespace foo is not found.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := RequireNamespace(t.Context(), &fakeTemporal{describeErr: tc.err}, "localhost:7233", "foo")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}

func TestSearchAttributeErrors(t *testing.T) {
	t.Parallel()
	denied := serviceerror.NewPermissionDenied("Request unauthorized.", "")
	for _, tc := range []struct {
		name          string
		fake          *fakeTemporal
		want          string
		permissionErr bool
	}{
		{"list failed", &fakeTemporal{listErr: serviceerror.NewInternal("boom")},
			"OperatorService.ListSearchAttributes for namespace foo: boom", false},
		{"add failed", &fakeTemporal{addErr: serviceerror.NewUnavailable("down")},
			"OperatorService.AddSearchAttributes for namespace foo: down", false},
		{"list refused, visibility fails too", &fakeTemporal{listErr: denied, countErr: map[string]error{"MatchmakingPaused": serviceerror.NewUnavailable("down")}},
			"Temporal refused OperatorService.ListSearchAttributes for namespace foo: permission denied: Request unauthorized.; " +
				"checking them through visibility instead failed too: WorkflowService.CountWorkflowExecutions for namespace foo: down", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := EnsureSearchAttributes(t.Context(), tc.fake, "foo", workflows.SearchAttributes)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			var pd *serviceerror.PermissionDenied
			if errors.As(err, &pd) != tc.permissionErr {
				t.Fatalf("errors.As PermissionDenied = %v, want %v", !tc.permissionErr, tc.permissionErr)
			}
			var missing *MissingSearchAttributesError
			if errors.As(err, &missing) {
				t.Fatalf("a failure, not a refusal, reported as missing attributes: %v", err)
			}
		})
	}
	if err := EnsureSearchAttributes(t.Context(), &fakeTemporal{}, "foo", workflows.SearchAttributes); err != nil {
		t.Fatalf("all calls succeed: %v", err)
	}
}

// Where the OperatorService is refused (an API key on Temporal Cloud), the
// attributes are checked through visibility: present, the worker starts;
// missing, the error names each with its type and the commands.
func TestSearchAttributesWhereOperatorServiceIsRefused(t *testing.T) {
	t.Parallel()
	denied := serviceerror.NewPermissionDenied("Request unauthorized.", "")
	unknown := serviceerror.NewInvalidArgument("invalid query: column name is not a valid search attribute")
	for _, tc := range []struct {
		name string
		fake *fakeTemporal
		want string // "" means no error
	}{
		{"list refused, all exist", &fakeTemporal{listErr: denied}, ""},
		{"list unimplemented, all exist", &fakeTemporal{listErr: serviceerror.NewUnimplemented("no operator service")}, ""},
		{"list refused, two missing", &fakeTemporal{listErr: denied, countErr: map[string]error{
			"MatchmakingEventCode": unknown, "MatchmakingQueueDepth": unknown,
		}}, "namespace foo lacks the search attributes MatchmakingEventCode (Keyword), MatchmakingQueueDepth (Int), " +
			"and this client may not create them (Temporal refused OperatorService.ListSearchAttributes for namespace foo: permission denied: Request unauthorized.); " +
			"an administrator creates them once: on Temporal Cloud " +
			"`tcld namespace search-attributes add --namespace foo --search-attribute MatchmakingEventCode=Keyword --search-attribute MatchmakingQueueDepth=Int`, " +
			"on other servers `temporal operator search-attribute create --namespace foo --name MatchmakingEventCode --type Keyword && " +
			"temporal operator search-attribute create --namespace foo --name MatchmakingQueueDepth --type Int`"},
		{"list allowed, add refused", &fakeTemporal{addErr: denied}, "namespace foo lacks the search attributes MatchmakingEventCode (Keyword), " +
			"MatchmakingPaused (Bool), MatchmakingUsersMatched (Int), MatchmakingQueueDepth (Int), and this client may not create them " +
			"(Temporal refused OperatorService.AddSearchAttributes for namespace foo: permission denied: Request unauthorized.); " +
			"an administrator creates them once: on Temporal Cloud `tcld namespace search-attributes add --namespace foo " +
			"--search-attribute MatchmakingEventCode=Keyword --search-attribute MatchmakingPaused=Bool " +
			"--search-attribute MatchmakingUsersMatched=Int --search-attribute MatchmakingQueueDepth=Int`, on other servers " +
			"`temporal operator search-attribute create --namespace foo --name MatchmakingEventCode --type Keyword && " +
			"temporal operator search-attribute create --namespace foo --name MatchmakingPaused --type Bool && " +
			"temporal operator search-attribute create --namespace foo --name MatchmakingUsersMatched --name MatchmakingQueueDepth --type Int`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := EnsureSearchAttributes(t.Context(), tc.fake, "foo", workflows.SearchAttributes)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error\n%v\nwant\n%s", err, tc.want)
			}
			var missing *MissingSearchAttributesError
			var pd *serviceerror.PermissionDenied
			if !errors.As(err, &missing) || !errors.As(err, &pd) {
				t.Fatalf("error is not a *MissingSearchAttributesError wrapping the refusal: %T", err)
			}
		})
	}
}
