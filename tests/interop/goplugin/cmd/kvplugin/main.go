// kvplugin: a go-plugin plugin serving the examples/grpc KV contract in memory.
// Each Put writes a line to stdout and stderr (synced to the host over GRPCStdio)
// and logs through hclog; Put of key "crash" exits with status 3 mid-call.
package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
)

var logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: os.Stderr, JSONFormat: true})

type store struct {
	mu   sync.Mutex
	data map[string][]byte
}

func (s *store) Put(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == "crash" {
		os.Exit(3)
	}
	s.data[key] = value
	fmt.Fprintf(os.Stdout, "goplugin stdout: put %s\n", key)
	fmt.Fprintf(os.Stderr, "goplugin stderr: put %s\n", key)
	logger.Info("put", "key", key, "size", len(value))
	return nil
}

func (s *store) Get(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	if !ok {
		return nil, fmt.Errorf("no value for key %q", key)
	}
	return v, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: map[string]plugin.Plugin{
			shared.PluginGRPC: &shared.KVGRPCPlugin{Impl: &store{data: map[string][]byte{}}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
}
