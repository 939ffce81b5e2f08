// Command host drives a task plugin through one task's lifecycle as a Go
// hashicorp/go-plugin host: it launches the plugin command given after the flags,
// dispenses "task_plugin" and calls Describe, NewPlugin, NewTaskPlugin,
// BuildSandbox, Started, Stopped, Finished (or Exception after a failing stage) and
// Dispose, the way plugwire's manager does. It prints one JSON line per call:
// {"stage", "error_kind", "messages", "log", "set_env", "verdict"}.
//
//	host [-mtls] [-config JSON] -- python -m plugwire.grpc.tasks module:Provider
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"plugwire.test/tasks/taskpb"
)

type taskPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (taskPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (taskPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return taskpb.NewTaskPluginServiceClient(c), nil
}

func emit(stage string, resp *taskpb.StageResponse, err error) bool {
	out := map[string]any{"stage": stage}
	failed := false
	if err != nil {
		out["error_kind"], out["messages"] = "RPC", []string{err.Error()}
		failed = true
	} else if resp != nil {
		if resp.Error != nil {
			out["error_kind"], out["messages"] = resp.Error.Kind.String(), resp.Error.Messages
			failed = true
		}
		out["log"], out["verdict"] = resp.Log, resp.Verdict
		env := map[string]string{}
		for _, v := range resp.SetEnv {
			env[v.Name] = v.Value
		}
		out["set_env"] = env
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	return failed
}

func main() {
	mtls := flag.Bool("mtls", false, "use go-plugin AutoMTLS")
	cfg := flag.String("config", "{}", "the plugin's configuration (JSON)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: host [-mtls] [-config JSON] -- plugin command...")
		os.Exit(2)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "PLUGWIRE_TASK_PLUGIN",
			MagicCookieValue: "8c0f6b3e-task-plugin",
		},
		Plugins:          map[string]plugin.Plugin{"task_plugin": taskPlugin{}},
		Cmd:              exec.Command(flag.Arg(0), flag.Args()[1:]...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         *mtls,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	raw, err := rpc.Dispense("task_plugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dispense:", err)
		os.Exit(1)
	}
	tp := raw.(taskpb.TaskPluginServiceClient)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	desc, err := tp.Describe(ctx, &taskpb.DescribeRequest{ProtocolVersion: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "describe:", err)
		os.Exit(1)
	}
	line, _ := json.Marshal(map[string]any{"stage": "describe", "provider": desc.Provider,
		"config_schema": desc.ConfigSchemaJson})
	fmt.Println(string(line))
	np, err := tp.NewPlugin(ctx, &taskpb.NewPluginRequest{Name: "py", ConfigJson: *cfg})
	if err != nil || np.Error != nil {
		fmt.Fprintln(os.Stderr, "new plugin:", err, np.GetError())
		os.Exit(1)
	}
	line, _ = json.Marshal(map[string]any{"stage": "new_plugin", "payload_schema": np.PayloadSchemaJson})
	fmt.Println(string(line))

	ref := &taskpb.TaskRef{TaskId: "go-task", RunId: 0}
	reason := ""
	fail := func(kind string) string {
		if kind == "MALFORMED_PAYLOAD" {
			return "malformed-payload"
		}
		return "internal-error"
	}
	run := func(stage string, call func() (*taskpb.StageResponse, error)) bool {
		if reason != "" {
			return false
		}
		resp, err := call()
		if emit(stage, resp, err) {
			kind := "RPC"
			if err == nil {
				kind = resp.Error.Kind.String()
			}
			reason = fail(kind)
			return false
		}
		return true
	}
	created := run("new_task_plugin", func() (*taskpb.StageResponse, error) {
		return tp.NewTaskPlugin(ctx, &taskpb.NewTaskPluginRequest{TaskId: ref.TaskId, RunId: ref.RunId, PayloadJson: "{}"})
	})
	run("build_sandbox", func() (*taskpb.StageResponse, error) { return tp.BuildSandbox(ctx, ref) })
	run("started", func() (*taskpb.StageResponse, error) { return tp.Started(ctx, ref) })
	var verdict bool
	run("stopped", func() (*taskpb.StageResponse, error) {
		r, err := tp.Stopped(ctx, &taskpb.StoppedRequest{Task: ref,
			Result: &taskpb.ResultSet{Success: true, HasExitCode: true, ExitCode: 0}})
		verdict = err == nil && r.Verdict
		return r, err
	})
	run("finished", func() (*taskpb.StageResponse, error) {
		return tp.Finished(ctx, &taskpb.FinishedRequest{Task: ref, Success: verdict})
	})
	if !created {
		return // a plugin that failed to create its task plugin gets nothing more
	}
	if reason != "" {
		resp, err := tp.Exception(ctx, &taskpb.ExceptionRequest{Task: ref, Reason: reason})
		emit("exception", resp, err)
	}
	resp, err := tp.Dispose(ctx, ref)
	emit("dispose", resp, err)
}
