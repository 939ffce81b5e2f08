// nriruntime: containerd/nri's pkg/adaptation driven over stdin/stdout, modelled on
// the mock runtime of pkg/adaptation/suite_test.go. Each stdin line is a JSON
// command {"op": ..., ...}; each reply is one stdout line {"ok": bool, "error": str,
// "result": <protojson>}. Messages are protojson (proto field names).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	validator "github.com/containerd/nri/plugins/default-validator/builtin"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type command struct {
	Op              string            `json:"op"`
	Socket          string            `json:"socket"`
	PluginPath      string            `json:"plugin_path"`
	ConfigPath      string            `json:"config_path"`
	RegisterTimeout float64           `json:"registration_timeout"`
	RequestTimeout  float64           `json:"request_timeout"`
	Count           int               `json:"count"`
	Timeout         float64           `json:"timeout"`
	Request         json.RawMessage   `json:"request"`
	Pods            []json.RawMessage `json:"pods"`
	Containers      []json.RawMessage `json:"containers"`
	Fail            []string          `json:"fail"`
	SynthPods       int               `json:"synthetic_pods"`
	SynthContainers int               `json:"synthetic_containers"`
	Padding         int               `json:"padding"`
	Calls           int               `json:"calls"`
	// DefaultValidator enables upstream's builtin default validator with this
	// YAML DefaultValidatorConfig (nri.WithDefaultValidator).
	DefaultValidator string `json:"default_validator"`
}

type metrics struct {
	mu    sync.Mutex
	count int
}

func (m *metrics) RecordPluginInvocation(_, _ string, _ error)                               {}
func (m *metrics) RecordPluginLatency(_, _ string, _ time.Duration)                          {}
func (m *metrics) RecordPluginAdjustments(_, _ string, _ *api.ContainerAdjustment, _, _ int) {}
func (m *metrics) UpdatePluginCount(n int) {
	m.mu.Lock()
	m.count = n
	m.mu.Unlock()
}
func (m *metrics) get() int { m.mu.Lock(); defer m.mu.Unlock(); return m.count }

var (
	out     = bufio.NewWriter(os.Stdout)
	outLock sync.Mutex
	mopts   = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}
	uopts   = protojson.UnmarshalOptions{DiscardUnknown: false}
)

func reply(result proto.Message, err error) {
	outLock.Lock()
	defer outLock.Unlock()
	m := map[string]any{"ok": err == nil}
	if err != nil {
		m["error"] = err.Error()
	}
	if result != nil && err == nil {
		b, e := mopts.Marshal(result)
		if e != nil {
			m["ok"] = false
			m["error"] = e.Error()
		} else {
			m["result"] = json.RawMessage(b)
		}
	}
	line, _ := json.Marshal(m)
	out.Write(line)
	out.WriteString("\n")
	out.Flush()
}

func decode(raw json.RawMessage, msg proto.Message) error {
	if len(raw) == 0 {
		return nil
	}
	return uopts.Unmarshal(raw, msg)
}

func main() {
	var (
		r       *nri.Adaptation
		m       = &metrics{}
		pods    []*api.PodSandbox
		ctrs    []*api.Container
		updLock sync.Mutex
		updates []*api.ContainerUpdate
		failIDs = map[string]bool{}
	)
	syncFn := func(ctx context.Context, cb nri.SyncCB) error {
		_, err := cb(ctx, pods, ctrs)
		return err
	}
	updateFn := func(_ context.Context, req []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
		updLock.Lock()
		defer updLock.Unlock()
		var failed []*api.ContainerUpdate
		for _, u := range req {
			if failIDs[u.ContainerId] {
				failed = append(failed, u)
				continue
			}
			updates = append(updates, u)
		}
		return failed, nil
	}
	ctx := context.Background()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<20), 64<<20)
	for in.Scan() {
		var cmd command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			reply(nil, fmt.Errorf("bad command: %w", err))
			continue
		}
		switch cmd.Op {
		case "start":
			pods, ctrs = nil, nil
			for _, raw := range cmd.Pods {
				p := &api.PodSandbox{}
				if err := decode(raw, p); err != nil {
					reply(nil, err)
					continue
				}
				pods = append(pods, p)
			}
			for _, raw := range cmd.Containers {
				c := &api.Container{}
				if err := decode(raw, c); err != nil {
					reply(nil, err)
					continue
				}
				ctrs = append(ctrs, c)
			}
			pad := strings.Repeat("x", cmd.Padding)
			for i := 0; i < cmd.SynthPods; i++ {
				pods = append(pods, &api.PodSandbox{Id: fmt.Sprintf("spod-%d", i), Name: fmt.Sprintf("spod-%d", i),
					Annotations: map[string]string{"pad": pad}})
			}
			for i := 0; i < cmd.SynthContainers; i++ {
				ctrs = append(ctrs, &api.Container{Id: fmt.Sprintf("sctr-%d", i), PodSandboxId: fmt.Sprintf("spod-%d", i%max(cmd.SynthPods, 1)),
					Name: fmt.Sprintf("sctr-%d", i), State: api.ContainerState_CONTAINER_RUNNING, Annotations: map[string]string{"pad": pad}})
			}
			for _, id := range cmd.Fail {
				failIDs[id] = true
			}
			if cmd.RegisterTimeout > 0 {
				nri.SetPluginRegistrationTimeout(time.Duration(cmd.RegisterTimeout * float64(time.Second)))
			}
			if cmd.RequestTimeout > 0 {
				nri.SetPluginRequestTimeout(time.Duration(cmd.RequestTimeout * float64(time.Second)))
			}
			opts := []nri.Option{nri.WithSocketPath(cmd.Socket), nri.WithMetrics(m)}
			pluginPath := cmd.PluginPath
			if pluginPath == "" {
				pluginPath = cmd.Socket + ".no-plugins"
			}
			opts = append(opts, nri.WithPluginPath(pluginPath))
			if cmd.ConfigPath != "" {
				opts = append(opts, nri.WithPluginConfigPath(cmd.ConfigPath))
			}
			if cmd.DefaultValidator != "" {
				cfg := &validator.DefaultValidatorConfig{}
				if err := yaml.Unmarshal([]byte(cmd.DefaultValidator), cfg); err != nil {
					reply(nil, fmt.Errorf("bad default_validator: %w", err))
					continue
				}
				opts = append(opts, nri.WithDefaultValidator(cfg))
			}
			var err error
			r, err = nri.New("mock-runtime", "0.0.1", syncFn, updateFn, opts...)
			if err == nil {
				err = r.Start()
			}
			reply(nil, err)
		case "wait_plugins":
			deadline := time.Now().Add(time.Duration(cmd.Timeout * float64(time.Second)))
			for m.get() < cmd.Count && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := m.get(); n < cmd.Count {
				reply(nil, fmt.Errorf("only %d of %d plugins connected", n, cmd.Count))
			} else {
				reply(nil, nil)
			}
		case "plugin_count":
			reply(&api.OptionalInt{Value: int64(m.get())}, nil)
		case "run_pod_sandbox":
			req := &api.RunPodSandboxRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.RunPodSandbox(ctx, req))
		case "stop_pod_sandbox":
			req := &api.StopPodSandboxRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.StopPodSandbox(ctx, req))
		case "remove_pod_sandbox":
			req := &api.RemovePodSandboxRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.RemovePodSandbox(ctx, req))
		case "update_pod_sandbox":
			req := &api.UpdatePodSandboxRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			rpl, err := r.UpdatePodSandbox(ctx, req)
			reply(rpl, err)
		case "post_update_pod_sandbox":
			req := &api.PostUpdatePodSandboxRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.PostUpdatePodSandbox(ctx, req))
		case "create_container":
			req := &api.CreateContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			rpl, err := r.CreateContainer(ctx, req)
			reply(rpl, err)
		case "post_create_container":
			req := &api.PostCreateContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.PostCreateContainer(ctx, req))
		case "start_container":
			req := &api.StartContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.StartContainer(ctx, req))
		case "post_start_container":
			req := &api.PostStartContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.PostStartContainer(ctx, req))
		case "update_container":
			req := &api.UpdateContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			rpl, err := r.UpdateContainer(ctx, req)
			reply(rpl, err)
		case "post_update_container":
			req := &api.PostUpdateContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.PostUpdateContainer(ctx, req))
		case "stop_container":
			req := &api.StopContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			rpl, err := r.StopContainer(ctx, req)
			reply(rpl, err)
		case "remove_container":
			req := &api.RemoveContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			reply(nil, r.RemoveContainer(ctx, req))
		case "bench_create":
			// CreateContainer round trips through the adaptation, timed here so that
			// the stdin/stdout command channel does not count: per-call nanoseconds.
			req := &api.CreateContainerRequest{}
			if err := decode(cmd.Request, req); err != nil {
				reply(nil, err)
				continue
			}
			lat := make([]string, 0, cmd.Calls)
			var failure error
			for i := 0; i < cmd.Calls; i++ {
				r2 := proto.Clone(req).(*api.CreateContainerRequest)
				start := time.Now()
				if _, err := r.CreateContainer(ctx, r2); err != nil {
					failure = err
					break
				}
				lat = append(lat, strconv.FormatInt(time.Since(start).Nanoseconds(), 10))
			}
			reply(&api.OptionalRepeatedString{Value: lat}, failure)
		case "updates":
			updLock.Lock()
			rpl := &api.UpdateContainersRequest{Update: updates}
			updates = nil
			updLock.Unlock()
			reply(rpl, nil)
		case "stop":
			if r != nil {
				r.Stop()
			}
			reply(nil, nil)
			return
		default:
			reply(nil, fmt.Errorf("unknown op %q", cmd.Op))
		}
	}
}
