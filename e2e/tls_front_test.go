package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/eventmatch/matchmaker/internal/connect/testpki"
)

// A front stands in front of the plain dev server the way a Temporal
// cluster behind TLS does, so the real binaries are tested against it.
type front struct {
	addr string
	pki  *testpki.PKI
	// accepted counts connections that passed the front's check
	// (handshake, or API key on a call); refused counts the rest.
	accepted, refused atomic.Int64
	// operatorRefused counts OperatorService calls the API-key front
	// refused.
	operatorRefused atomic.Int64
}

// startMTLSFront TLS-terminates on 127.0.0.1 with a certificate for
// 127.0.0.1 and localhost, accepts only clients with a certificate the
// test CA signed, and forwards their bytes to the dev server.
func startMTLSFront(t *testing.T) *front {
	t.Helper()
	f := &front{pki: testpki.New(t, "127.0.0.1", "localhost")}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", f.pki.ServerTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.forward(ctx, conn.(*tls.Conn))
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = ln.Close()
		wg.Wait()
	})
	return f
}

// forward completes the handshake (so a client the front refuses never
// reaches the dev server) and copies bytes both ways until either side
// closes or the test ends.
func (f *front) forward(ctx context.Context, conn *tls.Conn) {
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		f.refused.Add(1)
		return
	}
	f.accepted.Add(1)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", suite.temporalAddress)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	// Closing both ends the other copy.
}

// operatorServicePrefix is the full name prefix of every OperatorService
// method.
const operatorServicePrefix = "/temporal.api.operatorservice.v1.OperatorService/"

// startAPIKeyFront serves gRPC over TLS with a certificate for
// temporal.test only (clients must set TEMPORAL_TLS_SERVER_NAME), wants
// "authorization: Bearer <key>" on every call, refuses OperatorService
// calls with PermissionDenied as Temporal Cloud does for an API key that
// may not manage the namespace, and forwards everything else, unparsed,
// to the dev server.
func startAPIKeyFront(t *testing.T, key string) *front {
	t.Helper()
	f := &front{pki: testpki.New(t, "temporal.test")}
	backend, err := grpc.NewClient(suite.temporalAddress,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}), grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(f.pki.ServerTLS(false))),
		grpc.ForceServerCodec(rawCodec{}),
		grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage),
		// The SDK pings idle connections every 30s, as Temporal's
		// frontend allows; gRPC's default policy would answer with
		// GOAWAY "too_many_pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			return f.proxyCall(ss, backend, key)
		}),
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		_ = backend.Close()
	})
	return f
}

// maxMessage is the SDK's own limit, so no reply the dev server sends is
// too large for the front.
const maxMessage = 128 << 20

func (f *front) proxyCall(ss grpc.ServerStream, backend *grpc.ClientConn, key string) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return status.Error(codes.Internal, "no method")
	}
	in, _ := metadata.FromIncomingContext(ss.Context())
	if got := in.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+key {
		f.refused.Add(1)
		// Like Temporal Cloud, the refusal does not repeat what was sent.
		return status.Error(codes.Unauthenticated, "Request unauthenticated: a valid API key is required")
	}
	if strings.HasPrefix(method, operatorServicePrefix) {
		f.operatorRefused.Add(1)
		return status.Error(codes.PermissionDenied, "Request unauthorized.")
	}
	f.accepted.Add(1)
	out := metadata.MD{}
	for k, v := range in {
		// Transport headers belong to each hop; the dev server needs no key.
		if strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") ||
			k == "content-type" || k == "user-agent" || k == "te" || k == "authorization" {
			continue
		}
		out[k] = v
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ss.Context(), out))
	defer cancel()
	cs, err := backend.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	go func() {
		for {
			var m rawFrame
			if err := ss.RecvMsg(&m); err != nil {
				if errors.Is(err, io.EOF) {
					_ = cs.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if err := cs.SendMsg(&m); err != nil {
				return // RecvMsg below reports the stream's status
			}
		}
	}()
	if md, err := cs.Header(); err == nil {
		if err := ss.SendHeader(md); err != nil {
			return err
		}
	}
	for {
		var m rawFrame
		if err := cs.RecvMsg(&m); err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err // the dev server's status, passed on as it is
		}
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
	}
}

// rawFrame is one gRPC message, forwarded without being parsed.
type rawFrame struct{ b []byte }

// rawCodec passes messages through as bytes. Its name is "proto" so the
// content type on both hops stays application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*rawFrame).b, nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	// gRPC may reuse data once Unmarshal returns.
	v.(*rawFrame).b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
