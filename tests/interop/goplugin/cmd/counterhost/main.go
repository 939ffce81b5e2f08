// counterhost: a go-plugin host for the examples/bidirectional counter contract:
// each put serves an AddHelper through the broker (see internal/harness).
package main

import (
	"fmt"
	"strconv"

	"github.com/hashicorp/go-plugin/examples/bidirectional/shared"

	"plugwire.test/goplugin/internal/harness"
)

type adder struct{}

func (adder) Sum(a, b int64) (int64, error) { return a + b, nil }

func main() {
	harness.Main(harness.Contract{
		Handshake: shared.Handshake,
		Plugins:   shared.PluginMap,
		Name:      "counter",
		Op: func(raw interface{}, op string, args []string) (string, error) {
			c := raw.(shared.Counter)
			switch op {
			case "put":
				n, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return "", err
				}
				return "ok", c.Put(args[0], n, adder{})
			case "get":
				v, err := c.Get(args[0])
				return strconv.FormatInt(v, 10), err
			}
			return "", fmt.Errorf("unknown op %q", op)
		},
	})
}
