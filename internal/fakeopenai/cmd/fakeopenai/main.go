// Command fakeopenai serves the tests' OpenAI-compatible fake as a process,
// answering every chat completion after a fixed latency. The AI load
// benchmark points a real worker at it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/eventmatch/matchmaker/internal/fakeopenai"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	latency := flag.Duration("latency", 300*time.Millisecond, "delay before each answer")
	flag.Parse()
	srv, err := fakeopenai.Listen(*addr, func(call int, req fakeopenai.Request) fakeopenai.Response {
		return fakeopenai.Echo(call, req).After(*latency)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeopenai:", err)
		os.Exit(1)
	}
	fmt.Println("fakeopenai: serving", srv.URL(), "latency", *latency)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	fmt.Println("fakeopenai: calls", srv.Calls())
	srv.Close()
}
