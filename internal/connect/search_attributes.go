package connect

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
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

// EnsureSearchAttributes registers attrs (the workflow's custom search
// attributes) in the namespace when they are missing, so a plain `temporal server
// start-dev` needs no extra flags.
//
// Where the OperatorService is refused (an API key on Temporal Cloud, where
// an administrator creates search attributes with tcld), it checks through
// visibility instead and lets the caller start when every attribute exists;
// otherwise the error is a *MissingSearchAttributesError naming each one
// and the commands that create them.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, attrs []temporal.SearchAttributeKey) error {
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		if !refused(err) {
			return callError("ListSearchAttributes", namespace, err)
		}
		missing, verr := missingByVisibility(ctx, c, namespace, attrs)
		if verr != nil {
			return fmt.Errorf("%w; checking them through visibility instead failed too: %w",
				callError("ListSearchAttributes", namespace, err), verr)
		}
		if len(missing) == 0 {
			return nil
		}
		return &MissingSearchAttributesError{Namespace: namespace, Missing: missing, Refused: callError("ListSearchAttributes", namespace, err)}
	}
	missing := missingFrom(existing, attrs)
	if len(missing) == 0 {
		return nil
	}
	request := map[string]enums.IndexedValueType{}
	for _, key := range missing {
		request[key.GetName()] = key.GetValueType()
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: request,
	}); err != nil {
		// Two workers starting at once on a fresh namespace both find the
		// attributes missing, and the server refuses the second one's add.
		// Whatever the refusal says, what counts is whether they exist now.
		if again, lerr := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace}); lerr == nil &&
			len(missingFrom(again, attrs)) == 0 {
			return nil
		}
		if refused(err) {
			return &MissingSearchAttributesError{Namespace: namespace, Missing: missing, Refused: callError("AddSearchAttributes", namespace, err)}
		}
		return callError("AddSearchAttributes", namespace, err)
	}
	return nil
}

// missingFrom lists the attrs that listed lacks.
func missingFrom(listed *operatorservice.ListSearchAttributesResponse, attrs []temporal.SearchAttributeKey) []temporal.SearchAttributeKey {
	var missing []temporal.SearchAttributeKey
	for _, key := range attrs {
		if _, ok := listed.GetCustomAttributes()[key.GetName()]; !ok {
			missing = append(missing, key)
		}
	}
	return missing
}

// refused reports a call the server will not serve for this client, as
// opposed to one that failed.
func refused(err error) bool {
	switch serviceerror.ToStatus(err).Code() {
	case codes.PermissionDenied, codes.Unimplemented:
		return true
	}
	return false
}

// missingByVisibility finds which search attributes the namespace lacks
// without the OperatorService: a visibility query naming an attribute the
// namespace does not have fails with InvalidArgument. It cannot see an
// attribute's type.
func missingByVisibility(ctx context.Context, c client.Client, namespace string, attrs []temporal.SearchAttributeKey) ([]temporal.SearchAttributeKey, error) {
	var missing []temporal.SearchAttributeKey
	for _, key := range attrs {
		_, err := c.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: namespace,
			Query:     key.GetName() + " IS NOT NULL",
		})
		var invalid *serviceerror.InvalidArgument
		switch {
		case err == nil:
		case errors.As(err, &invalid):
			missing = append(missing, key)
		default:
			return nil, fmt.Errorf("WorkflowService.CountWorkflowExecutions for namespace %s: %w", namespace, err)
		}
	}
	return missing, nil
}

// MissingSearchAttributesError is a namespace without some of the
// workflow's search attributes that this client may not create. Its text
// is the commands that create them.
type MissingSearchAttributesError struct {
	Namespace string
	Missing   []temporal.SearchAttributeKey
	// Refused is the OperatorService call the server refused.
	Refused error
}

func (e *MissingSearchAttributesError) Error() string {
	names := make([]string, len(e.Missing))
	tcld := []string{"tcld namespace search-attributes add --namespace " + e.Namespace}
	// The Temporal CLI takes one --type for all its --name flags: one
	// command per type.
	var byType []string
	cliNames := map[string][]string{}
	for i, key := range e.Missing {
		typ := valueTypeName(key.GetValueType())
		names[i] = fmt.Sprintf("%s (%s)", key.GetName(), typ)
		tcld = append(tcld, fmt.Sprintf("--search-attribute %s=%s", key.GetName(), typ))
		if _, ok := cliNames[typ]; !ok {
			byType = append(byType, typ)
		}
		cliNames[typ] = append(cliNames[typ], "--name "+key.GetName())
	}
	cli := make([]string, len(byType))
	for i, typ := range byType {
		cli[i] = fmt.Sprintf("temporal operator search-attribute create --namespace %s %s --type %s",
			e.Namespace, strings.Join(cliNames[typ], " "), typ)
	}
	return fmt.Sprintf("namespace %s lacks the search attributes %s, and this client may not create them (%v); "+
		"an administrator creates them once: on Temporal Cloud `%s`, on other servers `%s`",
		e.Namespace, strings.Join(names, ", "), e.Refused, strings.Join(tcld, " "), strings.Join(cli, " && "))
}

func (e *MissingSearchAttributesError) Unwrap() error { return e.Refused }

// valueTypeName is the type as tcld and the Temporal CLI spell it.
func valueTypeName(t enums.IndexedValueType) string {
	switch t {
	case enums.INDEXED_VALUE_TYPE_TEXT:
		return "Text"
	case enums.INDEXED_VALUE_TYPE_KEYWORD:
		return "Keyword"
	case enums.INDEXED_VALUE_TYPE_INT:
		return "Int"
	case enums.INDEXED_VALUE_TYPE_DOUBLE:
		return "Double"
	case enums.INDEXED_VALUE_TYPE_BOOL:
		return "Bool"
	case enums.INDEXED_VALUE_TYPE_DATETIME:
		return "Datetime"
	case enums.INDEXED_VALUE_TYPE_KEYWORD_LIST:
		return "KeywordList"
	default:
		return t.String()
	}
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
