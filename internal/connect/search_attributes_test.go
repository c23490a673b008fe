package connect

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
)

// fakeTemporal answers DescribeNamespace and the two search-attribute calls
// with the given errors; any other call panics.
type fakeTemporal struct {
	client.Client
	describeErr, listErr, addErr error
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

func (f fakeOperatorService) ListSearchAttributes(context.Context, *operatorservice.ListSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error) {
	return &operatorservice.ListSearchAttributesResponse{}, f.listErr
}

func (f fakeOperatorService) AddSearchAttributes(context.Context, *operatorservice.AddSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.AddSearchAttributesResponse, error) {
	return &operatorservice.AddSearchAttributesResponse{}, f.addErr
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
	denied := serviceerror.NewPermissionDenied("Request unauthorized.", "")
	for _, tc := range []struct {
		name          string
		fake          *fakeTemporal
		want          string
		permissionErr bool
	}{
		{"list refused", &fakeTemporal{listErr: denied},
			"Temporal refused OperatorService.ListSearchAttributes for namespace foo: permission denied: Request unauthorized.", true},
		{"add refused", &fakeTemporal{addErr: denied},
			"Temporal refused OperatorService.AddSearchAttributes for namespace foo: permission denied: Request unauthorized.", true},
		{"list failed", &fakeTemporal{listErr: serviceerror.NewInternal("boom")},
			"OperatorService.ListSearchAttributes for namespace foo: boom", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := EnsureSearchAttributes(t.Context(), tc.fake, "foo")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			var pd *serviceerror.PermissionDenied
			if errors.As(err, &pd) != tc.permissionErr {
				t.Fatalf("errors.As PermissionDenied = %v, want %v", !tc.permissionErr, tc.permissionErr)
			}
		})
	}
	if err := EnsureSearchAttributes(t.Context(), &fakeTemporal{}, "foo"); err != nil {
		t.Fatalf("all calls succeed: %v", err)
	}
}
