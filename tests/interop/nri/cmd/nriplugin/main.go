// nriplugin: an NRI plugin built on containerd/nri's pkg/stub, configurable by flags,
// used as the Go peer of plugwire's runtime (and as the Go side of conflicts).
//
// Besides fixed adjustments it mirrors the behaviour of upstream's sample plugins
// (which are not published as modules): -log logs every event (logger), rlimits
// from the "ulimits.nri.containerd.io/container.<name>" style annotation
// (ulimit-adjuster) and devices from "devices.nri.io/container.<name>" (device-injector),
// both in a simple "type:hard:soft;..." / "path:type:major:minor;..." form.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

var (
	envs, annotations, mounts multi
	memLimit                  = flag.Int64("memory-limit", 0, "memory limit to set")
	cpuShares                 = flag.Uint64("cpu-shares", 0, "cpu shares to set")
	events                    = flag.String("events", "", "comma list of events to subscribe (default all implemented)")
	hangCreate                = flag.Duration("hang-create", 0, "sleep this long in CreateContainer")
	exitCreate                = flag.Bool("exit-on-create", false, "exit the process inside CreateContainer")
	failCreate                = flag.String("fail-create", "", "return this error from CreateContainer")
	logEvents                 = flag.Bool("log", false, "log every event to stderr (like upstream's logger)")
	updateAfterSync           = flag.String("update-after-sync", "", "container id to request cpu shares 777 for after sync")
	rejectEnv                 = flag.String("reject-env", "", "as validator: reject adjustments setting this env var")
	socketPath                = flag.String("socket", "", "runtime socket")
	pluginName                = flag.String("name", "", "plugin name")
	pluginIdx                 = flag.String("idx", "", "plugin index")
	ulimits                   = flag.Bool("ulimits", false, "add rlimits from the pod annotation (ulimit-adjuster)")
	updateShares              = flag.Uint64("update-shares", 0, "answer UpdateContainer/StopContainer with cpu shares updates")
	devices                   = flag.Bool("devices", false, "add devices from the pod annotation (device-injector)")
	security                  = flag.Bool("security", false, "add hooks, seccomp, namespace, sysctl from container annotations \"<idx-name>.plugwire.io/<what>\"")
)

type plugin struct {
	stub stub.Stub
	mask stub.EventMask
}

func logf(format string, args ...any) {
	if *logEvents {
		fmt.Fprintf(os.Stderr, "[INFO] "+format+"\n", args...)
	}
}

// Configure takes more flags from the configuration (pre-installed plugins get no
// command line, only their NN-name.conf).
func (p *plugin) Configure(_ context.Context, config, runtime, version string) (stub.EventMask, error) {
	if fields := strings.Fields(config); len(fields) > 0 {
		if err := flag.CommandLine.Parse(fields); err != nil {
			return 0, err
		}
		if err := p.parseEvents(); err != nil {
			return 0, err
		}
	}
	logf("Configure config=%q runtime=%s/%s", config, runtime, version)
	return p.mask, nil
}

func (p *plugin) parseEvents() error {
	if *events == "" {
		return nil
	}
	mask, err := api.ParseEventMask(*events)
	if err != nil {
		return err
	}
	p.mask = mask
	return nil
}

func (p *plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	logf("Synchronize pods=%d containers=%d", len(pods), len(ctrs))
	if *updateAfterSync != "" {
		go func() {
			time.Sleep(50 * time.Millisecond)
			u := &api.ContainerUpdate{ContainerId: *updateAfterSync}
			u.SetLinuxCPUShares(777)
			if _, err := p.stub.UpdateContainers([]*api.ContainerUpdate{u}); err != nil {
				fmt.Fprintf(os.Stderr, "[ERROR] update failed: %v\n", err)
			}
		}()
	}
	return nil, nil
}

func (p *plugin) Shutdown(_ context.Context) { logf("Shutdown") }

func (p *plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	logf("RunPodSandbox %s", pod.GetName())
	return nil
}
func (p *plugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	logf("StopPodSandbox %s", pod.GetName())
	return nil
}
func (p *plugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	logf("RemovePodSandbox %s", pod.GetName())
	return nil
}

func parseUint(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
func parseInt(s string) int64   { v, _ := strconv.ParseInt(s, 10, 64); return v }

func (p *plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	logf("CreateContainer %s/%s", pod.GetName(), ctr.GetName())
	if *hangCreate > 0 {
		time.Sleep(*hangCreate)
	}
	if *exitCreate {
		os.Exit(3)
	}
	if *failCreate != "" {
		return nil, nil, fmt.Errorf("%s", *failCreate)
	}
	adjust := &api.ContainerAdjustment{}
	for _, kv := range envs {
		k, v, _ := strings.Cut(kv, "=")
		adjust.AddEnv(k, v)
	}
	for _, kv := range annotations {
		k, v, _ := strings.Cut(kv, "=")
		adjust.AddAnnotation(k, v)
	}
	for _, m := range mounts {
		dst, src, _ := strings.Cut(m, ":")
		adjust.AddMount(&api.Mount{Destination: dst, Source: src, Type: "bind", Options: []string{"rbind", "ro"}})
	}
	if *memLimit != 0 {
		adjust.SetLinuxMemoryLimit(*memLimit)
	}
	if *cpuShares != 0 {
		adjust.SetLinuxCPUShares(*cpuShares)
	}
	ann := pod.GetAnnotations()
	if spec, ok := ann["ulimits.nri.plugwire.io/container."+ctr.GetName()]; ok && *ulimits {
		for _, l := range strings.Split(spec, ";") {
			f := strings.Split(l, ":")
			if len(f) == 3 {
				adjust.AddRlimit(f[0], parseUint(f[1]), parseUint(f[2]))
			}
		}
	}
	if spec, ok := ann["devices.nri.plugwire.io/container."+ctr.GetName()]; ok && *devices {
		for _, d := range strings.Split(spec, ";") {
			f := strings.Split(d, ":")
			if len(f) == 4 {
				adjust.AddDevice(&api.LinuxDevice{Path: f[0], Type: f[1], Major: parseInt(f[2]), Minor: parseInt(f[3])})
			}
		}
	}
	if *security {
		addSecurity(adjust, identity(), ctr.GetAnnotations())
	}
	return adjust, nil, nil
}

// identity is the plugin's "idx-name" as pkg/stub sees it (flags over env).
func identity() string {
	name, idx := *pluginName, *pluginIdx
	if name == "" {
		name = os.Getenv(api.PluginNameEnvVar)
	}
	if idx == "" {
		idx = os.Getenv(api.PluginIdxEnvVar)
	}
	return idx + "-" + name
}

// addSecurity adds the adjustments upstream's default validator polices, as
// container annotations addressed to this plugin ask: "<idx-name>.plugwire.io/"
// + "hook" (a prestart hook path), "seccomp" (a policy's default action),
// "namespace" (type=path) or "sysctl" (key=value).
func addSecurity(adjust *api.ContainerAdjustment, name string, ann map[string]string) {
	prefix := name + ".plugwire.io/"
	if path, ok := ann[prefix+"hook"]; ok {
		adjust.AddHooks(&api.Hooks{Prestart: []*api.Hook{{Path: path}}})
	}
	if action, ok := ann[prefix+"seccomp"]; ok {
		adjust.SetLinuxSeccompPolicy(&api.LinuxSeccomp{DefaultAction: action})
	}
	if ns, ok := ann[prefix+"namespace"]; ok {
		typ, path, _ := strings.Cut(ns, "=")
		adjust.AddOrReplaceNamespace(&api.LinuxNamespace{Type: typ, Path: path})
	}
	if kv, ok := ann[prefix+"sysctl"]; ok {
		k, v, _ := strings.Cut(kv, "=")
		adjust.SetLinuxSysctl(k, v)
	}
}

func (p *plugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	logf("StartContainer %s/%s", pod.GetName(), ctr.GetName())
	return nil
}
func (p *plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, r *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	logf("UpdateContainer %s/%s", pod.GetName(), ctr.GetName())
	if *updateShares != 0 {
		u := &api.ContainerUpdate{ContainerId: ctr.GetId()}
		u.SetLinuxCPUShares(*updateShares)
		return []*api.ContainerUpdate{u}, nil
	}
	return nil, nil
}
func (p *plugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	logf("StopContainer %s/%s", pod.GetName(), ctr.GetName())
	if *updateShares != 0 {
		u := &api.ContainerUpdate{ContainerId: "neighbour"}
		u.SetLinuxCPUShares(*updateShares)
		return []*api.ContainerUpdate{u}, nil
	}
	return nil, nil
}
func (p *plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	logf("RemoveContainer %s/%s", pod.GetName(), ctr.GetName())
	return nil
}

type validator struct{ plugin }

func (v *validator) ValidateContainerAdjustment(_ context.Context, req *api.ValidateContainerAdjustmentRequest) error {
	for _, e := range req.GetAdjust().GetEnv() {
		if e.Key == *rejectEnv {
			return fmt.Errorf("env %s is not allowed", e.Key)
		}
	}
	return nil
}

func main() {
	flag.Var(&envs, "env", "KEY=VALUE to add (repeatable)")
	flag.Var(&annotations, "annotation", "key=value to add (repeatable)")
	flag.Var(&mounts, "mount", "dst:src bind mount to add (repeatable)")
	flag.Parse()
	p := &plugin{}
	if err := p.parseEvents(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var opts []stub.Option
	if *socketPath != "" {
		opts = append(opts, stub.WithSocketPath(*socketPath))
	}
	if *pluginName != "" {
		opts = append(opts, stub.WithPluginName(*pluginName))
	}
	if *pluginIdx != "" {
		opts = append(opts, stub.WithPluginIdx(*pluginIdx))
	}
	var impl any = p
	if *rejectEnv != "" {
		impl = &validator{*p}
	}
	s, err := stub.New(impl, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to create plugin stub: %v\n", err)
		os.Exit(1)
	}
	p.stub = s
	if v, ok := impl.(*validator); ok {
		v.stub = s
	}
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "plugin exited with error %v\n", err)
		os.Exit(1)
	}
}
