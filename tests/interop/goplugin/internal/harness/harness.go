// Package harness is the go-plugin host used by plugwire's interop tests: it
// launches the plugin given as arguments with real hashicorp/go-plugin, runs the
// operations named by -ops against it and prints one JSON report on stdout.
package harness

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type report struct {
	OK           bool     `json:"ok"`
	Error        string   `json:"error,omitempty"`
	Results      []string `json:"results"`
	Negotiated   int      `json:"negotiated"`
	Stdout       string   `json:"stdout"`
	Stderr       string   `json:"stderr"`
	Logs         []string `json:"logs"`
	KillSeconds  float64  `json:"kill_seconds"`
	Exited       bool     `json:"exited"`
	KillGraceful bool     `json:"kill_graceful"`
	PluginPID    int      `json:"plugin_pid"`
}

// Contract is what a host harness binary plugs in: its handshake, plugin map,
// the plugin name to dispense and how to run one operation.
type Contract struct {
	Handshake plugin.HandshakeConfig
	Plugins   map[string]plugin.Plugin
	Name      string
	Op        func(raw interface{}, op string, args []string) (string, error)
}

func Main(c Contract) {
	mtls := flag.Bool("mtls", false, "AutoMTLS")
	mux := flag.Bool("mux", false, "GRPCBrokerMultiplex")
	ops := flag.String("ops", "", "comma-separated ops: put:k:v get:k ping sleep:ms")
	versions := flag.String("versions", "1", "comma-separated app protocol versions the host offers")
	expectOut := flag.String("expect-stdout", "", "wait up to 5 s for this text on SyncStdout")
	expectErr := flag.String("expect-stderr", "", "wait up to 5 s for this text on SyncStderr")
	startTimeout := flag.Duration("start-timeout", 20*time.Second, "StartTimeout")
	reattach := flag.String("reattach", "", `reattach JSON {"Protocol","ProtocolVersion","Pid","Test","Addr":{"Network","String"}} instead of launching`)
	flag.Parse()

	rep := &report{Results: []string{}, Logs: []string{}}
	var logs, stdout, stderr syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace, JSONFormat: true, Name: "host"})

	pluginMap, handshake := c.Plugins, c.Handshake
	versioned := map[int]plugin.PluginSet{}
	for _, v := range strings.Split(*versions, ",") {
		n, err := strconv.Atoi(v)
		if err != nil {
			panic(err)
		}
		versioned[n] = pluginMap
	}
	args := flag.Args()
	var cmd *exec.Cmd
	var rc *plugin.ReattachConfig
	var plugins map[string]plugin.Plugin
	if *reattach != "" {
		rc = parseReattach(*reattach)
		// go-plugin's reattach path dispenses from Plugins, not VersionedPlugins.
		plugins = pluginMap
	} else {
		cmd = exec.Command(args[0], args[1:]...)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     plugin.HandshakeConfig{MagicCookieKey: handshake.MagicCookieKey, MagicCookieValue: handshake.MagicCookieValue},
		VersionedPlugins:    versioned,
		Plugins:             plugins,
		Cmd:                 cmd,
		Reattach:            rc,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:            *mtls,
		GRPCBrokerMultiplex: *mux,
		Logger:              logger,
		SyncStdout:          &stdout,
		SyncStderr:          &stderr,
		StartTimeout:        *startTimeout,
	})
	defer func() {
		rep.Logs = strings.Split(strings.TrimSpace(logs.String()), "\n")
		out, _ := json.Marshal(rep)
		fmt.Println(string(out))
	}()

	err := run(client, c, *ops, rep)
	if err == nil {
		waitFor(&stdout, *expectOut)
		waitFor(&stderr, *expectErr)
	}
	if rc := client.ReattachConfig(); rc != nil {
		rep.PluginPID = rc.Pid
	}
	started := time.Now()
	client.Kill()
	rep.KillSeconds = time.Since(started).Seconds()
	rep.Exited = client.Exited()
	rep.KillGraceful = !strings.Contains(logs.String(), "plugin failed to exit gracefully")
	rep.Stdout, rep.Stderr = stdout.String(), stderr.String()
	if err != nil {
		rep.Error = err.Error()
		return
	}
	rep.OK = true
}

func waitFor(buf *syncBuffer, text string) {
	if text == "" {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(buf.String(), text) {
		time.Sleep(10 * time.Millisecond)
	}
}

func run(client *plugin.Client, c Contract, ops string, rep *report) error {
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	rep.Negotiated = client.NegotiatedVersion()
	raw, err := rpc.Dispense(c.Name)
	if err != nil {
		return err
	}
	for _, op := range strings.Split(ops, ",") {
		if op == "" {
			continue
		}
		parts := strings.SplitN(op, ":", 3)
		switch parts[0] {
		case "ping":
			if err := rpc.Ping(); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			rep.Results = append(rep.Results, "pong")
		case "sleep":
			ms, _ := strconv.Atoi(parts[1])
			time.Sleep(time.Duration(ms) * time.Millisecond)
		default:
			res, err := c.Op(raw, parts[0], parts[1:])
			if err != nil {
				return fmt.Errorf("%s: %w", parts[0], err)
			}
			rep.Results = append(rep.Results, res)
		}
	}
	return nil
}

func parseReattach(text string) *plugin.ReattachConfig {
	var raw struct {
		Protocol        string
		ProtocolVersion int
		Pid             int
		Test            bool
		Addr            struct{ Network, String string }
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		panic(err)
	}
	var addr net.Addr
	var err error
	if raw.Addr.Network == "unix" {
		addr, err = net.ResolveUnixAddr("unix", raw.Addr.String)
	} else {
		addr, err = net.ResolveTCPAddr("tcp", raw.Addr.String)
	}
	if err != nil {
		panic(err)
	}
	return &plugin.ReattachConfig{
		Protocol:        plugin.Protocol(raw.Protocol),
		ProtocolVersion: raw.ProtocolVersion,
		Addr:            addr,
		Pid:             raw.Pid,
		Test:            raw.Test,
	}
}
