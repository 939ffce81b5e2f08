// Command recorder is a task plugin written in Go with hashicorp/go-plugin: the Go
// twin of plugwire.core.tasks.testing.RecorderProvider. It serves
// plugwire.tasks.v1.TaskPluginService as the go-plugin plugin "task_plugin",
// appends every stage it sees to the JSON-lines file named by its "record_file"
// config ({"plugin","task_id","stage","arg"}, the Python recorder's format) and
// behaves as its "script" config says per stage: ok, error, malformed, nonfatal,
// fatal, hang (until the call is cancelled) or false (stopped returns false).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"plugwire.test/tasks/taskpb"
)

type config struct {
	Script     map[string]string `json:"script"`
	RecordFile string            `json:"record_file"`
}

type task struct {
	mu sync.Mutex // one stage of a task at a time
}

type server struct {
	taskpb.UnimplementedTaskPluginServiceServer
	mu    sync.Mutex
	name  string
	cfg   config
	tasks map[string]*task
}

func key(id string, run int64) string { return fmt.Sprintf("%s/%d", id, run) }

func (s *server) record(taskID, stage, arg string) {
	if s.cfg.RecordFile == "" {
		return
	}
	line, _ := json.Marshal(map[string]string{
		"plugin": s.name, "task_id": taskID, "stage": stage, "arg": arg,
	})
	f, err := os.OpenFile(s.cfg.RecordFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "[ERROR] cannot record: %v\n", err)
		return
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}

// perform does what the script says for stage; it returns the stopped verdict.
func (s *server) perform(ctx context.Context, stage string) (bool, *taskpb.TaskError) {
	action := s.cfg.Script[stage]
	who := s.name
	switch action {
	case "error":
		return false, &taskpb.TaskError{Kind: taskpb.TaskError_FATAL, Type: "RuntimeError",
			Messages: []string{fmt.Sprintf("%s fails in %s", who, stage)}}
	case "malformed":
		return false, &taskpb.TaskError{Kind: taskpb.TaskError_MALFORMED_PAYLOAD,
			Messages: []string{fmt.Sprintf("%s rejects the payload in %s", who, stage)}}
	case "nonfatal":
		return false, &taskpb.TaskError{Kind: taskpb.TaskError_NON_FATAL,
			Messages: []string{fmt.Sprintf("%s has a non-fatal problem in %s", who, stage)}}
	case "fatal":
		return false, &taskpb.TaskError{Kind: taskpb.TaskError_FATAL,
			Messages: []string{fmt.Sprintf("%s has a fatal problem in %s", who, stage)}}
	case "hang":
		<-ctx.Done()
		return false, &taskpb.TaskError{Kind: taskpb.TaskError_FATAL, Messages: []string{"cancelled"}}
	case "false":
		return false, nil
	}
	return true, nil
}

func (s *server) Describe(ctx context.Context, req *taskpb.DescribeRequest) (*taskpb.DescribeResponse, error) {
	return &taskpb.DescribeResponse{ProtocolVersion: 1, Provider: "GoRecorder",
		ConfigSchemaJson: `{"type":"object"}`}, nil
}

func (s *server) NewPlugin(ctx context.Context, req *taskpb.NewPluginRequest) (*taskpb.NewPluginResponse, error) {
	var cfg config
	if req.ConfigJson != "" && req.ConfigJson != "null" {
		if err := json.Unmarshal([]byte(req.ConfigJson), &cfg); err != nil {
			return &taskpb.NewPluginResponse{Error: &taskpb.TaskError{Kind: taskpb.TaskError_FATAL,
				Messages: []string{err.Error()}}}, nil
		}
	}
	s.mu.Lock()
	s.name, s.cfg = req.Name, cfg
	s.mu.Unlock()
	return &taskpb.NewPluginResponse{PayloadSchemaJson: `{"type":"object","properties":{}}`}, nil
}

func (s *server) stage(ctx context.Context, ref *taskpb.TaskRef, stage, arg string, resp *taskpb.StageResponse) (*taskpb.StageResponse, error) {
	s.mu.Lock()
	t := s.tasks[key(ref.TaskId, ref.RunId)]
	s.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("no task %s", key(ref.TaskId, ref.RunId))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s.record(ref.TaskId, stage, arg)
	verdict, terr := s.perform(ctx, stage)
	resp.Error = terr
	if stage == "stopped" {
		resp.Verdict = verdict && terr == nil
	}
	resp.Log = append(resp.Log, fmt.Sprintf("[go-recorder] %s", stage))
	return resp, nil
}

func (s *server) NewTaskPlugin(ctx context.Context, req *taskpb.NewTaskPluginRequest) (*taskpb.StageResponse, error) {
	k := key(req.TaskId, req.RunId)
	s.mu.Lock()
	if s.tasks[k] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("task %s exists", k)
	}
	s.tasks[k] = &task{}
	s.mu.Unlock()
	// the Python recorder records json.dumps(payload, sort_keys=True); "{}" for the
	// empty payloads the interop test uses
	resp, err := s.stage(ctx, &taskpb.TaskRef{TaskId: req.TaskId, RunId: req.RunId},
		"new_task_plugin", req.PayloadJson, &taskpb.StageResponse{})
	if err == nil && resp.Error != nil { // the host will never dispose it
		s.mu.Lock()
		delete(s.tasks, k)
		s.mu.Unlock()
	}
	return resp, err
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (s *server) BuildSandbox(ctx context.Context, ref *taskpb.TaskRef) (*taskpb.StageResponse, error) {
	return s.stage(ctx, ref, "build_sandbox", "", &taskpb.StageResponse{
		SetEnv: []*taskpb.EnvVar{{Name: "GO_RECORDER", Value: "1"}}})
}

func (s *server) Started(ctx context.Context, ref *taskpb.TaskRef) (*taskpb.StageResponse, error) {
	return s.stage(ctx, ref, "started", "", &taskpb.StageResponse{})
}

func (s *server) Stopped(ctx context.Context, req *taskpb.StoppedRequest) (*taskpb.StageResponse, error) {
	return s.stage(ctx, req.Task, "stopped", "success="+pyBool(req.Result.GetSuccess()), &taskpb.StageResponse{})
}

func (s *server) Finished(ctx context.Context, req *taskpb.FinishedRequest) (*taskpb.StageResponse, error) {
	return s.stage(ctx, req.Task, "finished", "success="+pyBool(req.Success), &taskpb.StageResponse{})
}

func (s *server) Exception(ctx context.Context, req *taskpb.ExceptionRequest) (*taskpb.StageResponse, error) {
	return s.stage(ctx, req.Task, "exception", req.Reason, &taskpb.StageResponse{})
}

func (s *server) Dispose(ctx context.Context, ref *taskpb.TaskRef) (*taskpb.StageResponse, error) {
	resp, err := s.stage(ctx, ref, "dispose", "", &taskpb.StageResponse{})
	s.mu.Lock()
	delete(s.tasks, key(ref.TaskId, ref.RunId))
	s.mu.Unlock()
	return resp, err
}

type taskPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (taskPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	taskpb.RegisterTaskPluginServiceServer(s, &server{tasks: map[string]*task{}})
	return nil
}

func (taskPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return taskpb.NewTaskPluginServiceClient(c), nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "PLUGWIRE_TASK_PLUGIN",
			MagicCookieValue: "8c0f6b3e-task-plugin",
		},
		Plugins:    map[string]plugin.Plugin{"task_plugin": taskPlugin{}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
