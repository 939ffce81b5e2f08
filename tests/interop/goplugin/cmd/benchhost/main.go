// benchhost: a go-plugin host that measures KV Get round trips against the plugin
// given as arguments (unix socket, no TLS): -n calls spread over -c goroutines after
// -warmup calls; prints {"p50_us","p99_us","calls_per_s","n","c"} as JSON.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
)

func main() {
	var n, c, warmup int
	args := os.Args[1:]
	for len(args) > 1 && args[0] != "--" {
		var v int
		fmt.Sscanf(args[1], "%d", &v)
		switch args[0] {
		case "-n":
			n = v
		case "-c":
			c = v
		case "-warmup":
			warmup = v
		}
		args = args[2:]
	}
	args = args[1:]
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.PluginMap,
		Cmd:              exec.Command(args[0], args[1:]...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error}),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	raw, err := rpc.Dispense(shared.PluginGRPC)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kv := raw.(shared.KV)
	if err := kv.Put("bench", []byte("0123456789abcdef")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; i < warmup; i++ {
		if _, err := kv.Get("bench"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	per := n / c
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				t := time.Now()
				if _, err := kv.Get("bench"); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				lat[w*per+i] = time.Since(t)
			}
		}(w)
	}
	wg.Wait()
	wall := time.Since(start)
	lat = lat[:per*c]
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	out, _ := json.Marshal(map[string]interface{}{
		"p50_us":      float64(lat[len(lat)/2].Nanoseconds()) / 1e3,
		"p99_us":      float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3,
		"calls_per_s": float64(len(lat)) / wall.Seconds(),
		"n":           len(lat),
		"c":           c,
	})
	fmt.Println(string(out))
}
