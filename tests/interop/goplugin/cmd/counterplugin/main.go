// counterplugin: a go-plugin plugin serving the examples/bidirectional counter in
// memory; Put calls back into the host's AddHelper through the broker.
package main

import (
	"sync"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/bidirectional/shared"
)

type counter struct {
	mu   sync.Mutex
	nums map[string]int64
}

func (c *counter) Put(key string, value int64, a shared.AddHelper) error {
	c.mu.Lock()
	cur := c.nums[key]
	c.mu.Unlock()
	r, err := a.Sum(cur, value)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nums[key] = r
	c.mu.Unlock()
	return nil
}

func (c *counter) Get(key string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nums[key], nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins:         map[string]plugin.Plugin{"counter": &shared.CounterPlugin{Impl: &counter{nums: map[string]int64{}}}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
