// kvhost: a go-plugin host for the examples/grpc KV contract (see internal/harness).
package main

import (
	"fmt"

	"github.com/hashicorp/go-plugin/examples/grpc/shared"

	"plugwire.test/goplugin/internal/harness"
)

func main() {
	harness.Main(harness.Contract{
		Handshake: shared.Handshake,
		Plugins:   shared.PluginMap,
		Name:      shared.PluginGRPC,
		Op: func(raw interface{}, op string, args []string) (string, error) {
			kv := raw.(shared.KV)
			switch op {
			case "put":
				return "ok", kv.Put(args[0], []byte(args[1]))
			case "get":
				v, err := kv.Get(args[0])
				return string(v), err
			}
			return "", fmt.Errorf("unknown op %q", op)
		},
	})
}
