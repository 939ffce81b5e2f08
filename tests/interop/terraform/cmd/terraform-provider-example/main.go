// Command terraform-provider-example is the Go comparison provider for plugwire's
// Terraform support: a terraform-plugin-framework provider "example" (address
// registry.terraform.io/plugwire/example) with the resource example_thing, the data
// source example_echo and the function upper. The Python provider in the tests mirrors
// it; its shape is documented in tests/interop/terraform/README.md.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run in debug mode (prints TF_REATTACH_PROVIDERS)")
	flag.Parse()
	err := providerserver.Serve(context.Background(), newProvider, providerserver.ServeOpts{
		Address: "registry.terraform.io/plugwire/example",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
