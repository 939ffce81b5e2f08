// ttrpcpeer is the real containerd/ttrpc peer for plugwire's interop tests.
//
//	ttrpcpeer server SOCKET   serve the upstream integration/streaming service and
//	                          plugwire.interop.Probe on a unix socket; prints READY
//	ttrpcpeer client SOCKET   call every method of a server at SOCKET; prints one JSON
//	                          line per case and exits 1 when any case fails
//	ttrpcpeer bench SOCKET N CONC   N unary Echo calls, CONC in flight; prints JSON stats
//
// Probe.Inspect takes and returns a google.protobuf.Struct: it echoes the request
// metadata and deadline, sleeps "sleep_ms" (honouring the deadline), fails with
// "fail_code"/"fail_message" (plus a Struct detail) and pads the reply to "reply_size".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/containerd/ttrpc/integration/streaming"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const probeService = "plugwire.interop.Probe"

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: ttrpcpeer server|client|bench SOCKET [N CONC]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		serve(os.Args[2])
	case "client":
		os.Exit(runClient(os.Args[2]))
	case "bench":
		var n, conc int
		fmt.Sscan(os.Args[3], &n)
		fmt.Sscan(os.Args[4], &conc)
		bench(os.Args[2], n, conc)
	default:
		os.Exit(2)
	}
}

// ---- server ------------------------------------------------------------------

type streamingService struct{}

func (streamingService) Echo(_ context.Context, e *streaming.EchoPayload) (*streaming.EchoPayload, error) {
	e.Seq++
	return e, nil
}

func (streamingService) EchoStream(_ context.Context, es streaming.TTRPCStreaming_EchoStreamServer) error {
	for {
		e, err := es.Recv()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		e.Seq++
		if err := es.Send(e); err != nil {
			return err
		}
	}
}

func (streamingService) SumStream(_ context.Context, ss streaming.TTRPCStreaming_SumStreamServer) (*streaming.Sum, error) {
	var sum streaming.Sum
	for {
		part, err := ss.Recv()
		if err == io.EOF {
			return &sum, nil
		} else if err != nil {
			return nil, err
		}
		sum.Sum += part.Add
		sum.Num++
	}
}

func divide(sum *streaming.Sum) []*streaming.Part {
	r := rand.New(rand.NewSource(14))
	parts := make([]*streaming.Part, sum.Num)
	var total int32
	for i := int32(1); i < sum.Num-2; i++ {
		add := r.Int31()%1000 - 500
		parts[i] = &streaming.Part{Add: add}
		total += add
	}
	parts[0] = &streaming.Part{}
	parts[sum.Num-2] = &streaming.Part{Add: sum.Sum - total}
	parts[sum.Num-1] = &streaming.Part{}
	return parts
}

func (streamingService) DivideStream(_ context.Context, sum *streaming.Sum, ss streaming.TTRPCStreaming_DivideStreamServer) error {
	for _, p := range divide(sum) {
		if err := ss.Send(p); err != nil {
			return err
		}
	}
	return nil
}

const nullMsg = "non-empty empty"

func (streamingService) EchoNull(_ context.Context, es streaming.TTRPCStreaming_EchoNullServer) (*emptypb.Empty, error) {
	for seq := uint32(0); ; seq++ {
		e, err := es.Recv()
		if err == io.EOF {
			return &emptypb.Empty{}, nil
		} else if err != nil {
			return nil, err
		}
		if e.Seq != seq || e.Msg != nullMsg {
			return nil, fmt.Errorf("unexpected payload %d %q", e.Seq, e.Msg)
		}
	}
}

func (streamingService) EchoNullStream(_ context.Context, es streaming.TTRPCStreaming_EchoNullStreamServer) error {
	for seq := uint32(0); ; seq++ {
		e, err := es.Recv()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if e.Seq != seq || e.Msg != nullMsg {
			return fmt.Errorf("unexpected payload %d %q", e.Seq, e.Msg)
		}
		for i := 0; i < 10; i++ {
			if err := es.Send(&emptypb.Empty{}); err != nil {
				return err
			}
		}
	}
}

func (streamingService) EmptyPayloadStream(_ context.Context, _ *emptypb.Empty, s streaming.TTRPCStreaming_EmptyPayloadStreamServer) error {
	if err := s.Send(&streaming.EchoPayload{Seq: 1}); err != nil {
		return err
	}
	return s.Send(&streaming.EchoPayload{Seq: 2})
}

func inspect(ctx context.Context, unmarshal func(any) error) (any, error) {
	var req structpb.Struct
	if err := unmarshal(&req); err != nil {
		return nil, err
	}
	f := req.GetFields()
	if ms := f["sleep_ms"].GetNumberValue(); ms > 0 {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if code := f["fail_code"].GetNumberValue(); code > 0 {
		detail, _ := structpb.NewStruct(map[string]any{"why": "asked to"})
		st, err := status.New(codes.Code(code), f["fail_message"].GetStringValue()).WithDetails(detail)
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	out := map[string]any{}
	md := map[string]any{}
	if m, ok := ttrpc.GetMetadata(ctx); ok {
		for k, vs := range m {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			md[k] = list
		}
	}
	out["metadata"] = md
	if dl, ok := ctx.Deadline(); ok {
		out["deadline_ms"] = float64(time.Until(dl).Milliseconds())
	}
	if n := f["reply_size"].GetNumberValue(); n > 0 {
		out["pad"] = strings.Repeat("p", int(n))
	}
	return structpb.NewStruct(out)
}

func serve(path string) {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := ttrpc.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	streaming.RegisterTTRPCStreamingService(s, streamingService{})
	s.Register(probeService, map[string]ttrpc.Method{"Inspect": inspect})
	fmt.Println("READY")
	if err := s.Serve(context.Background(), l); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// ---- client ------------------------------------------------------------------

type result struct {
	Case   string `json:"case"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func dial(path string) *ttrpc.Client {
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return ttrpc.NewClient(conn)
}

func probe(ctx context.Context, c *ttrpc.Client, req map[string]any) (*structpb.Struct, error) {
	in, err := structpb.NewStruct(req)
	if err != nil {
		return nil, err
	}
	var out structpb.Struct
	err = c.Call(ctx, probeService, "Inspect", in, &out)
	return &out, err
}

func runClient(path string) int {
	c := dial(path)
	defer c.Close()
	sc := streaming.NewTTRPCStreamingClient(c)
	ctx := context.Background()
	var results []result
	add := func(name string, err error, detail string) {
		r := result{Case: name, OK: err == nil, Detail: detail}
		if err != nil {
			r.Detail = err.Error()
		}
		results = append(results, r)
	}

	add("Echo", func() error {
		resp, err := sc.Echo(ctx, &streaming.EchoPayload{Seq: 1, Msg: "Echo Me"})
		if err != nil {
			return err
		}
		if resp.Seq != 2 || resp.Msg != "Echo Me" {
			return fmt.Errorf("got %v", resp)
		}
		return nil
	}(), "")

	add("EchoStream", func() error {
		s, err := sc.EchoStream(ctx)
		if err != nil {
			return err
		}
		for i := 0; i < 100; i += 2 {
			if err := s.Send(&streaming.EchoPayload{Seq: uint32(i), Msg: fmt.Sprint(i)}); err != nil {
				return err
			}
			r, err := s.Recv()
			if err != nil {
				return err
			}
			if r.Seq != uint32(i+1) || r.Msg != fmt.Sprint(i) {
				return fmt.Errorf("got %v", r)
			}
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		if _, err := s.Recv(); err != io.EOF {
			return fmt.Errorf("expected EOF, got %v", err)
		}
		return nil
	}(), "50 round trips")

	add("SumStream", func() error {
		s, err := sc.SumStream(ctx)
		if err != nil {
			return err
		}
		var want streaming.Sum
		for i := -99; i <= 100; i++ {
			if err := s.Send(&streaming.Part{Add: int32(i)}); err != nil {
				return err
			}
			want.Sum += int32(i)
			want.Num++
		}
		got, err := s.CloseAndRecv()
		if err != nil {
			return err
		}
		if got.Sum != want.Sum || got.Num != want.Num {
			return fmt.Errorf("got %v want %v", got, &want)
		}
		return nil
	}(), "")

	add("DivideStream", func() error {
		s, err := sc.DivideStream(ctx, &streaming.Sum{Sum: 392, Num: 30})
		if err != nil {
			return err
		}
		var sum, num int32
		for {
			p, err := s.Recv()
			if err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			sum += p.Add
			num++
		}
		if sum != 392 || num != 30 {
			return fmt.Errorf("got sum %d num %d", sum, num)
		}
		return nil
	}(), "")

	add("EchoNull", func() error {
		s, err := sc.EchoNull(ctx)
		if err != nil {
			return err
		}
		for i := 0; i < 100; i++ {
			if err := s.Send(&streaming.EchoPayload{Seq: uint32(i), Msg: nullMsg}); err != nil {
				return err
			}
		}
		_, err = s.CloseAndRecv()
		return err
	}(), "")

	add("EchoNullStream", func() error {
		s, err := sc.EchoNullStream(ctx)
		if err != nil {
			return err
		}
		var count int
		done := make(chan error, 1)
		go func() {
			for {
				_, err := s.Recv()
				if err == io.EOF {
					done <- nil
					return
				} else if err != nil {
					done <- err
					return
				}
				count++
			}
		}()
		for i := 0; i < 20; i++ {
			if err := s.Send(&streaming.EchoPayload{Seq: uint32(i), Msg: nullMsg}); err != nil {
				return err
			}
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-time.After(10 * time.Second):
			return errors.New("no EOF within 10s")
		}
		if count != 200 {
			return fmt.Errorf("got %d empties, want 200", count)
		}
		return nil
	}(), "")

	add("EmptyPayloadStream", func() error {
		s, err := sc.EmptyPayloadStream(ctx, nil)
		if err != nil {
			return err
		}
		for i := uint32(1); i < 3; i++ {
			p, err := s.Recv()
			if err != nil {
				return err
			}
			if p.Seq != i {
				return fmt.Errorf("seq %d want %d", p.Seq, i)
			}
		}
		if _, err := s.Recv(); err != io.EOF {
			return fmt.Errorf("expected EOF, got %v", err)
		}
		return nil
	}(), "")

	add("Metadata", func() error {
		md := ttrpc.MD{}
		md.Set("x-plugwire", "one", "two")
		md.Set("trace", "abc")
		cctx, cancel := context.WithTimeout(ttrpc.WithMetadata(ctx, md), 5*time.Second)
		defer cancel()
		out, err := probe(cctx, c, map[string]any{})
		if err != nil {
			return err
		}
		got := out.AsMap()
		gmd, _ := json.Marshal(got["metadata"])
		if string(gmd) != `{"trace":["abc"],"x-plugwire":["one","two"]}` {
			return fmt.Errorf("metadata %s", gmd)
		}
		dl, _ := got["deadline_ms"].(float64)
		if dl < 4000 || dl > 5000 {
			return fmt.Errorf("deadline_ms %v", got["deadline_ms"])
		}
		return nil
	}(), "")

	add("StatusDetails", func() error {
		_, err := probe(ctx, c, map[string]any{"fail_code": 7, "fail_message": "go away"})
		st, ok := status.FromError(err)
		if !ok || st.Code() != codes.PermissionDenied || st.Message() != "go away" {
			return fmt.Errorf("got %v", err)
		}
		ds := st.Details()
		if len(ds) != 1 {
			return fmt.Errorf("details %v", ds)
		}
		s, ok := ds[0].(*structpb.Struct)
		if !ok || s.AsMap()["why"] != "asked to" {
			return fmt.Errorf("detail %v", ds[0])
		}
		return nil
	}(), "")

	add("DeadlineExpires", func() error {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := probe(cctx, c, map[string]any{"sleep_ms": 5000})
		if !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded {
			return fmt.Errorf("got %v", err)
		}
		if time.Since(start) > 3*time.Second {
			return fmt.Errorf("took %v", time.Since(start))
		}
		return nil
	}(), "")

	add("ServerEnforcesDeadline", func() error {
		// Send timeout_nano=100ms without a local deadline: the server must answer
		// DEADLINE_EXCEEDED by itself.
		conn, err := net.Dial("unix", path)
		if err != nil {
			return err
		}
		raw := ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(
			func(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
				req.TimeoutNano = int64(100 * time.Millisecond)
				return invoke(ctx, req, resp)
			}))
		defer raw.Close()
		start := time.Now()
		_, err = probe(ctx, raw, map[string]any{"sleep_ms": 5000})
		st, _ := status.FromError(err)
		if st.Code() != codes.DeadlineExceeded || st.Message() != "context deadline exceeded" {
			return fmt.Errorf("got %v", err)
		}
		if time.Since(start) > 2*time.Second {
			return fmt.Errorf("took %v", time.Since(start))
		}
		return nil
	}(), "")

	add("DeadlineMet", func() error {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := probe(cctx, c, map[string]any{"sleep_ms": 100})
		return err
	}(), "")

	add("OversizedRequestRefusedBySender", func() error {
		_, err := probe(ctx, c, map[string]any{"pad": strings.Repeat("x", 5<<20)})
		if status.Code(err) != codes.ResourceExhausted {
			return fmt.Errorf("got %v", err)
		}
		return nil
	}(), "")

	add("OversizedRequestDiscardedByServer", func() error {
		// the plugwire server under test runs with a 1 MiB limit
		_, err := probe(ctx, c, map[string]any{"pad": strings.Repeat("x", 2<<20)})
		st, _ := status.FromError(err)
		if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "exceed maximum message size of 1048576") {
			return fmt.Errorf("got %v", err)
		}
		if _, err := sc.Echo(ctx, &streaming.EchoPayload{Seq: 9}); err != nil {
			return fmt.Errorf("connection unusable afterwards: %v", err)
		}
		return nil
	}(), "")

	add("OversizedReplyRefusedByServer", func() error {
		_, err := probe(ctx, c, map[string]any{"reply_size": 2 << 20})
		st, _ := status.FromError(err)
		if st.Code() != codes.ResourceExhausted {
			return fmt.Errorf("got %v", err)
		}
		if _, err := sc.Echo(ctx, &streaming.EchoPayload{Seq: 9}); err != nil {
			return fmt.Errorf("connection unusable afterwards: %v", err)
		}
		return nil
	}(), "")

	add("Concurrent", func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := sc.Echo(ctx, &streaming.EchoPayload{Seq: uint32(i)})
				if err != nil {
					errs <- err
				} else if r.Seq != uint32(i+1) {
					errs <- fmt.Errorf("seq %d for %d", r.Seq, i)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		return <-errs
	}(), "200 goroutines")

	fail := 0
	for _, r := range results {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
		if !r.OK {
			fail++
		}
	}
	if fail > 0 {
		return 1
	}
	return 0
}

// ---- bench -------------------------------------------------------------------

func bench(path string, n, conc int) {
	c := dial(path)
	defer c.Close()
	sc := streaming.NewTTRPCStreamingClient(c)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		sc.Echo(ctx, &streaming.EchoPayload{Seq: 1, Msg: "warmup"})
	}
	lat := make([]time.Duration, n)
	var next int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= int64(n) {
					return
				}
				t := time.Now()
				if _, err := sc.Echo(ctx, &streaming.EchoPayload{Seq: 1, Msg: "hello ttrpc"}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	total := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	out, _ := json.Marshal(map[string]float64{
		"p50_us":      float64(lat[n/2].Nanoseconds()) / 1e3,
		"p99_us":      float64(lat[n*99/100].Nanoseconds()) / 1e3,
		"calls_per_s": float64(n) / total.Seconds(),
	})
	fmt.Println(string(out))
}
