// modelcheck KIND: decode one JSON document of KIND from stdin strictly into the
// wire type and print it re-encoded (exit 1 with the decoder's error otherwise).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"plugwire.test/interop/drp/wire"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: modelcheck PluginProvider|Action|Event|Error|Line")
		os.Exit(2)
	}
	var v interface{}
	switch os.Args[1] {
	case "PluginProvider":
		v = &wire.PluginProvider{}
	case "Action":
		v = &wire.Action{}
	case "Event":
		v = &wire.Event{}
	case "Error":
		v = &wire.Error{}
	case "Line":
		v = &wire.Line{}
	default:
		fmt.Fprintln(os.Stderr, "unknown kind", os.Args[1])
		os.Exit(2)
	}
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1)
	}
	if dec.More() {
		fmt.Fprintln(os.Stderr, "decode: trailing data")
		os.Exit(1)
	}
	out, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "encode:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
