package connect

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/eventmatch/matchmaker/workflows"
)

// RequireNamespace fails with a hint when the namespace does not exist. A
// caller not allowed to describe namespaces is let through: the calls that
// follow say what they were refused.
func RequireNamespace(ctx context.Context, c client.Client, address, namespace string) error {
	_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	var notFound *serviceerror.NamespaceNotFound
	var denied *serviceerror.PermissionDenied
	switch {
	case err == nil, errors.As(err, &denied):
		return nil
	case errors.As(err, &notFound):
		return fmt.Errorf("Temporal namespace %q does not exist at %s; create it (temporal operator namespace create --namespace %s) or set TEMPORAL_NAMESPACE",
			namespace, address, namespace)
	default:
		return fmt.Errorf("describe Temporal namespace %q at %s: %w", namespace, address, err)
	}
}

// EnsureSearchAttributes registers the workflow's custom search attributes
// in the namespace when they are missing, so a plain `temporal server
// start-dev` needs no extra flags.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return callError("ListSearchAttributes", namespace, err)
	}
	missing := map[string]enums.IndexedValueType{}
	for _, key := range workflows.SearchAttributes {
		if _, ok := existing.GetCustomAttributes()[key.GetName()]; !ok {
			missing[key.GetName()] = key.GetValueType()
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	}); err != nil {
		return callError("AddSearchAttributes", namespace, err)
	}
	return nil
}

// callError names the operator call that failed, and says plainly when
// the server refused it rather than failed it.
func callError(call, namespace string, err error) error {
	var denied *serviceerror.PermissionDenied
	if errors.As(err, &denied) {
		return fmt.Errorf("Temporal refused OperatorService.%s for namespace %s: permission denied: %w", call, namespace, err)
	}
	return fmt.Errorf("OperatorService.%s for namespace %s: %w", call, namespace, err)
}
