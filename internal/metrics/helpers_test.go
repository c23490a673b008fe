package metrics

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

type interceptorT = interceptor.WorkerInterceptor

func activityOptions(name string) activity.RegisterOptions {
	return activity.RegisterOptions{Name: name}
}
