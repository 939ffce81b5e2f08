// Command cipdhost drives an admission plugin through luci's own plugin host
// (cipd/client/cipd/plugin/host), the code the real CIPD client runs.
//
// It reads a JSON scenario from the file named by its only argument:
//
//	{"service_url": "https://...", "plugin": ["argv", ...],
//	 "metadata": {"<package>@<instance id>": [{"key": "...", "value": "..."}]},
//	 "batches": [[{"package": "...", "instance_id": "..."}, ...], ...],
//	 "wait_ms": 20000, "batch_wait_ms": [20000, 1500]}
//
// or, with "bench": {"pins": N, "inflight": K}, checks N distinct generated pins
// (after 200 warm-up ones) with K goroutines and prints {"checks", "seconds"}.
//
// Every batch is enqueued at once and awaited before the next starts. One JSON line
// per check goes to stdout: {"batch", "package", "instance_id", "ok", "code",
// "message", "same_promise"}. Plugin logs (Host.Log) go to stderr.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.chromium.org/luci/common/logging"
	"go.chromium.org/luci/common/logging/gologger"

	caspb "go.chromium.org/luci/cipd/api/cipd/v1/caspb"
	repopb "go.chromium.org/luci/cipd/api/cipd/v1/repopb"
	"go.chromium.org/luci/cipd/client/cipd/plugin"
	"go.chromium.org/luci/cipd/client/cipd/plugin/host"
	"go.chromium.org/luci/cipd/common"
)

type entry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type check struct {
	Package    string `json:"package"`
	InstanceID string `json:"instance_id"`
}

type scenario struct {
	ServiceURL string             `json:"service_url"`
	Plugin     []string           `json:"plugin"`
	Metadata   map[string][]entry `json:"metadata"`
	Batches    [][]check          `json:"batches"`
	WaitMS     int                `json:"wait_ms"`
	BatchWait  []int              `json:"batch_wait_ms"`
	Bench      *struct {
		Pins     int `json:"pins"`
		Inflight int `json:"inflight"`
	} `json:"bench"`
}

type result struct {
	Batch       int    `json:"batch"`
	Package     string `json:"package"`
	InstanceID  string `json:"instance_id"`
	OK          bool   `json:"ok"`
	Code        string `json:"code"`
	Message     string `json:"message"`
	SamePromise bool   `json:"same_promise"`
}

// repo serves ListMetadata from the scenario, newest first, paged by offset.
type repo struct{ md map[string][]entry }

func (r *repo) ListMetadata(ctx context.Context, in *repopb.ListMetadataRequest, _ ...grpc.CallOption) (*repopb.ListMetadataResponse, error) {
	all := r.md[in.Package+"@"+common.ObjectRefToInstanceID(in.Instance)]
	want := map[string]bool{}
	for _, k := range in.Keys {
		want[k] = true
	}
	var picked []*repopb.InstanceMetadata
	for _, e := range all {
		if len(want) == 0 || want[e.Key] {
			picked = append(picked, &repopb.InstanceMetadata{Key: e.Key, Value: []byte(e.Value)})
		}
	}
	start := 0
	if in.PageToken != "" {
		n, err := strconv.Atoi(in.PageToken)
		if err != nil || n < 0 || n > len(picked) {
			return nil, status.Errorf(codes.InvalidArgument, "bad page token %q", in.PageToken)
		}
		start = n
	}
	size := int(in.PageSize)
	if size <= 0 {
		size = 20
	}
	end := start + size
	resp := &repopb.ListMetadataResponse{}
	if end < len(picked) {
		resp.NextPageToken = strconv.Itoa(end)
	} else {
		end = len(picked)
	}
	resp.Metadata = picked[start:end]
	return resp, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cipdhost scenario.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var sc scenario
	if err := json.Unmarshal(raw, &sc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if sc.WaitMS == 0 {
		sc.WaitMS = 20000
	}

	ctx := gologger.StdConfig.Use(context.Background())
	ctx = logging.SetLevel(ctx, logging.Debug)
	h := &host.Host{PluginsContext: ctx}
	if err := h.Initialize(plugin.Config{ServiceURL: sc.ServiceURL, Repository: &repo{md: sc.Metadata}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer h.Close(ctx)

	ap, err := h.NewAdmissionPlugin(sc.Plugin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer ap.Close(ctx)

	enc := json.NewEncoder(os.Stdout)
	if sc.Bench != nil {
		seconds, err := bench(ctx, ap, sc.Bench.Pins, sc.Bench.Inflight)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = enc.Encode(map[string]any{"checks": sc.Bench.Pins, "seconds": seconds})
		return
	}
	for bi, batch := range sc.Batches {
		promises := make([]plugin.Promise, len(batch))
		for i, c := range batch {
			promises[i] = ap.CheckAdmission(common.Pin{PackageName: c.Package, InstanceID: c.InstanceID})
		}
		out := make([]result, len(batch))
		for i, c := range batch {
			again := ap.CheckAdmission(common.Pin{PackageName: c.Package, InstanceID: c.InstanceID})
			wait := sc.WaitMS
			if bi < len(sc.BatchWait) {
				wait = sc.BatchWait[bi]
			}
			wctx, cancel := context.WithTimeout(ctx, time.Duration(wait)*time.Millisecond)
			err := promises[i].Wait(wctx)
			cancel()
			r := result{Batch: bi, Package: c.Package, InstanceID: c.InstanceID, OK: err == nil, Code: codes.OK.String(), SamePromise: again == promises[i]}
			if err != nil {
				if st, ok := status.FromError(err); ok {
					r.Code = st.Code().String()
					r.Message = st.Message()
				} else {
					r.Code = "error"
					r.Message = err.Error()
				}
			}
			out[i] = r
		}
		for _, r := range out {
			_ = enc.Encode(r)
		}
	}
	start := time.Now()
	ap.Close(ctx)
	_ = enc.Encode(map[string]float64{"close_seconds": time.Since(start).Seconds()})
}

// benchPin is a distinct SHA256 pin per index.
func benchPin(prefix string, i int) common.Pin {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s%d", prefix, i)))
	iid := common.ObjectRefToInstanceID(&caspb.ObjectRef{HashAlgo: caspb.HashAlgo_SHA256, HexDigest: hex.EncodeToString(sum[:])})
	return common.Pin{PackageName: fmt.Sprintf("bench/%s/pkg%d", prefix, i%100), InstanceID: iid}
}

func bench(ctx context.Context, ap plugin.AdmissionPlugin, n, inflight int) (float64, error) {
	for i := 0; i < 200; i++ {
		if err := ap.CheckAdmission(benchPin("warm", i)).Wait(ctx); err != nil {
			return 0, err
		}
	}
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	errs := make(chan error, inflight)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := ap.CheckAdmission(benchPin("run", i)).Wait(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}
