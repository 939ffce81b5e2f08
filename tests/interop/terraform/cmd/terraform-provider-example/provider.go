package main

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

type exampleProvider struct{}

var (
	_ provider.Provider              = (*exampleProvider)(nil)
	_ provider.ProviderWithFunctions = (*exampleProvider)(nil)
)

func newProvider() provider.Provider { return &exampleProvider{} }

func (p *exampleProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "example"
	resp.Version = "0.1.0"
}

// Schema: the provider takes no configuration.
func (p *exampleProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{Description: "plugwire's comparison provider."}
}

func (p *exampleProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *exampleProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newThing}
}

func (p *exampleProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{newEcho}
}

func (p *exampleProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{newUpper}
}
